//! The VPC endpoints as the network has them (issue 36): per service, one the stack creates,
//! one the VPC already has, or none (NAT); private DNS only on an endpoint the stack creates;
//! the endpoints' group open to the VPC's workloads, whom their private DNS serves too, not
//! only to the functions; never a Cognito endpoint, as no function in the VPC calls Cognito.
//! Each check evaluates the template's conditions and rules layout by layout, and is run on a
//! planted bad copy of the template, where it must fire.

use serde_json::Value as J;
use serde_norway::Value;

mod common;
use common::iam::statements_of;
use common::layout::Layout;
use common::{resources_of_type, strings, template};

/// Each endpoint parameter and the service (the end of its `com.amazonaws.REGION.` name).
const SERVICES: [(&str, &str); 2] = [
    ("SecretsManagerVpcEndpoint", "secretsmanager"),
    ("Ec2VpcEndpoint", "ec2"),
];

const MODES: [&str; 3] = ["create", "existing", "none"];

const VPC: &str = "vpc-0aaaaaaaaaaaaaaa1";

/// The managed group: with it drift-check's rules half, which calls EC2, is deployed.
const GROUP: &str = "sg-0bbbbbbbbbbbbbbb2";

/// The VPC's CIDRs as a deploy gives them: one, two, and the most a VPC holds by default (5).
const CLIENT_CIDRS: [&str; 3] = [
    "10.0.0.0/16",
    "10.0.0.0/16,100.64.0.0/20",
    "10.0.0.0/16,10.1.0.0/16,10.2.0.0/16,10.3.0.0/16,10.4.0.0/16",
];

/// A VPC endpoint this layout creates.
struct Endpoint {
    name: String,
    service: String,
    properties: J,
}

/// Each VPC endpoint (interface or gateway) the layout creates, with its properties resolved.
fn endpoints(l: &Layout) -> Vec<Endpoint> {
    l.resources()
        .into_iter()
        .filter(|(_, r)| r["Type"].as_str() == Some("AWS::EC2::VPCEndpoint"))
        .map(|(name, r)| {
            let properties = l.value(&r["Properties"]).unwrap_or(J::Null);
            let service_name = properties["ServiceName"].as_str().unwrap_or("").to_owned();
            let service = service_name.rsplit('.').next().unwrap_or("").to_owned();
            Endpoint {
                name: name.to_owned(),
                service,
                properties,
            }
        })
        .collect()
}

/// The layout's parameters beyond the required ones: `modes` per service, a managed group (so
/// that a part calls EC2), and the VPC and its CIDRs an endpoint created needs.
fn network(modes: [&'static str; 2], cidrs: &'static str) -> Vec<(&'static str, &'static str)> {
    let mut given: Vec<(&str, &str)> = SERVICES
        .iter()
        .zip(modes)
        .map(|((parameter, _), mode)| (*parameter, mode))
        .collect();
    given.push(("DatabaseSecurityGroupId", GROUP));
    given.push(("VpcId", VPC));
    given.push(("EndpointClientCidrs", cidrs));
    given
}

/// Whether the security group rule `r` (resolved) admits HTTPS from `admits`.
fn opens_443(r: &J, key: &str, admits: &str) -> bool {
    let port = |k: &str| r[k].as_i64().or_else(|| r[k].as_str()?.parse().ok());
    let protocol = r["IpProtocol"].as_str().unwrap_or("");
    let covers =
        port("FromPort").unwrap_or(i64::MAX) <= 443 && port("ToPort").unwrap_or(i64::MIN) >= 443;
    let ports = protocol == "-1" || (protocol == "tcp" && covers);
    ports && r[key].as_str() == Some(admits)
}

/// For each service created alone and each list of the VPC's CIDRs: each endpoint's HTTPS
/// not open to one of the CIDRs or to the functions' group. Also each layout that creates an
/// endpoint and deploys without saying who its clients are.
fn endpoint_ingress_gaps(t: &Value) -> Vec<String> {
    let mut gaps = Vec::new();
    for (i, (parameter, service)) in SERVICES.iter().enumerate() {
        for cidrs in CLIENT_CIDRS {
            let mut modes = ["none"; 2];
            modes[i] = "create";
            let l = Layout::new(t, &network(modes, cidrs));
            let refused = l.refusals();
            if !refused.is_empty() {
                gaps.push(format!("{parameter}=create {cidrs}: refused {refused:?}"));
                continue;
            }
            let created = endpoints(&l);
            if !created.iter().any(|e| e.service == *service) {
                gaps.push(format!("{parameter}=create creates no {service} endpoint"));
            }
            let functions = l.params["FunctionSecurityGroupId"].clone();
            for e in created {
                let groups = e.properties["SecurityGroupIds"].as_array().cloned();
                let mut ingress = Vec::new();
                for g in groups.unwrap_or_default() {
                    let id = g.as_str().unwrap_or("");
                    let Some(group) = id
                        .strip_prefix('<')
                        .and_then(|id| id.strip_suffix('>'))
                        .filter(|id| l.resources().iter().any(|(n, _)| n == id))
                    else {
                        gaps.push(format!("{}: a group the stack does not make: {id}", e.name));
                        continue;
                    };
                    let rules =
                        l.value(&t["Resources"][group]["Properties"]["SecurityGroupIngress"]);
                    ingress.extend(
                        rules
                            .and_then(|r| r.as_array().cloned())
                            .unwrap_or_default(),
                    );
                }
                let open_to = |key: &str, who: &str| ingress.iter().any(|r| opens_443(r, key, who));
                if !open_to("SourceSecurityGroupId", &functions) {
                    gaps.push(format!("{}: 443 not open to the functions' group", e.name));
                }
                for cidr in cidrs.split(',') {
                    if !open_to("CidrIp", cidr) {
                        gaps.push(format!("{} ({cidrs}): 443 not open to {cidr}", e.name));
                    }
                }
            }
        }
        // Endpoints whose clients nobody named would serve the functions alone.
        let mut modes = ["none"; 2];
        modes[i] = "create";
        let l = Layout::new(t, &network(modes, ""));
        if l.refusals().is_empty() && !endpoints(&l).is_empty() {
            gaps.push(format!(
                "{parameter}=create deploys without EndpointClientCidrs"
            ));
        }
    }
    gaps
}

#[test]
fn the_endpoints_admit_the_vpcs_workloads_not_only_the_functions() {
    let t = template();
    assert_eq!(endpoint_ingress_gaps(&t), Vec::<String>::new());

    // Planted: yesterday's group, HTTPS from the functions' group only.
    let mut planted = t.clone();
    let ingress =
        &mut planted["Resources"]["EndpointSecurityGroup"]["Properties"]["SecurityGroupIngress"];
    ingress.as_sequence_mut().unwrap().truncate(1);
    let found = endpoint_ingress_gaps(&planted);
    for e in ["SecretsManagerEndpoint", "Ec2Endpoint"] {
        assert!(
            found
                .iter()
                .any(|m| m.starts_with(e) && m.ends_with("443 not open to 10.0.0.0/16")),
            "{found:?}"
        );
    }

    // Planted: the fifth CIDR dropped.
    let mut planted = t.clone();
    let ingress =
        &mut planted["Resources"]["EndpointSecurityGroup"]["Properties"]["SecurityGroupIngress"];
    ingress.as_sequence_mut().unwrap().pop();
    let found = endpoint_ingress_gaps(&planted);
    assert!(!found.is_empty());
    assert!(
        found
            .iter()
            .all(|m| m.ends_with("443 not open to 10.4.0.0/16")),
        "{found:?}"
    );

    // Planted: the rule no longer asks who the clients are.
    let mut planted = t.clone();
    let assertions = &mut planted["Rules"]["VpcIdWithEndpoints"]["Assertions"];
    assertions.as_sequence_mut().unwrap().truncate(1);
    let found = endpoint_ingress_gaps(&planted);
    assert_eq!(
        found,
        SERVICES.map(|(p, _)| format!("{p}=create deploys without EndpointClientCidrs"))
    );
}

/// For every choice of create, existing or none per service: an endpoint (or private DNS)
/// of a service the stack was told the VPC has, or goes to by NAT; more than one of a
/// service; or a created one without the private DNS the functions resolve it by.
fn endpoint_collisions(t: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    for (parameter, _) in SERVICES {
        let allowed = common::strings(&t["Parameters"][parameter]["AllowedValues"]);
        if allowed != MODES {
            problems.push(format!("{parameter}: no create/existing/none: {allowed:?}"));
        }
    }
    for a in MODES {
        for b in MODES {
            let modes = [a, b];
            let l = Layout::new(t, &network(modes, CLIENT_CIDRS[0]));
            let refused = l.refusals();
            if !refused.is_empty() {
                problems.push(format!("{modes:?}: refused {refused:?}"));
                continue;
            }
            let created = endpoints(&l);
            for ((parameter, service), mode) in SERVICES.iter().zip(modes) {
                let of: Vec<&Endpoint> = created.iter().filter(|e| e.service == *service).collect();
                for e in &of {
                    let dns = &e.properties["PrivateDnsEnabled"];
                    if mode != "create" {
                        problems.push(format!(
                            "{parameter}={mode}: creates {} (private DNS {dns})",
                            e.name
                        ));
                    } else if dns != &J::Bool(true) {
                        problems.push(format!("{}: private DNS {dns}", e.name));
                    }
                }
                if mode == "create" && of.len() != 1 {
                    problems.push(format!("{parameter}=create: {} endpoints", of.len()));
                }
            }
        }
    }
    problems
}

#[test]
fn a_service_whose_endpoint_the_vpc_already_has_gets_none_from_the_stack() {
    let t = template();
    assert_eq!(endpoint_collisions(&t), Vec::<String>::new());

    // Issue 36's layout (b): a VPC that already has a Secrets Manager endpoint with private
    // DNS, no NAT; the stack adds EC2's. AWS would refuse a second Secrets Manager endpoint.
    let l = Layout::new(&t, &network(["existing", "create"], "10.0.0.0/16"));
    assert_eq!(l.refusals(), Vec::<String>::new());
    let created: Vec<String> = endpoints(&l).into_iter().map(|e| e.service).collect();
    assert!(created.contains(&"ec2".to_owned()), "{created:?}");
    assert!(
        !created.contains(&"secretsmanager".to_owned()),
        "{created:?}"
    );

    // Planted: yesterday's all or nothing, every endpoint on one condition.
    let mut planted = t.clone();
    for e in ["SecretsManagerEndpoint", "Ec2Endpoint"] {
        planted["Resources"][e]["Condition"] = "CreatesVpcEndpoints".into();
    }
    let found = endpoint_collisions(&planted);
    assert!(
        found.iter().any(|m| m
            == "SecretsManagerVpcEndpoint=existing: creates SecretsManagerEndpoint (private DNS true)"),
        "{found:?}"
    );

    // Planted: "existing" taken to mean "an endpoint, ours".
    let mut planted = t.clone();
    planted["Conditions"]["CreatesSecretsManagerEndpoint"] =
        serde_norway::from_str("!Not [!Equals [!Ref SecretsManagerVpcEndpoint, none]]").unwrap();
    let found = endpoint_collisions(&planted);
    assert!(!found.is_empty());
    assert!(
        found
            .iter()
            .all(|m| m.starts_with("SecretsManagerVpcEndpoint=existing: creates")),
        "{found:?}"
    );

    // Planted: two Secrets Manager endpoints.
    let mut planted = t.clone();
    planted["Resources"]["SecondSecretsManagerEndpoint"] =
        t["Resources"]["SecretsManagerEndpoint"].clone();
    let found = endpoint_collisions(&planted);
    assert!(
        found.contains(&"SecretsManagerVpcEndpoint=create: 2 endpoints".to_owned()),
        "{found:?}"
    );
}

/// Each layout (every endpoint choice, with each part deployed or not) that creates a Cognito
/// endpoint, and each function in the VPC granted a Cognito call, which would need one.
fn cognito_endpoints(t: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    for a in MODES {
        for b in MODES {
            for parts in ["true", "false"] {
                let mut given = network([a, b], CLIENT_CIDRS[0]);
                given.push(("DeployDeveloperAccess", parts));
                given.push(("DeployDriftCheck", parts));
                let l = Layout::new(t, &given);
                for e in endpoints(&l) {
                    if e.service == "cognito-idp" {
                        problems.push(format!("[{a}, {b}] parts {parts}: creates {}", e.name));
                    }
                }
            }
        }
    }
    let in_vpc: Vec<&str> = resources_of_type(t, "AWS::Serverless::Function")
        .into_iter()
        .filter(|(_, f)| f["Properties"].get("VpcConfig").is_some())
        .map(|(name, _)| name)
        .collect();
    for (holder, statement) in statements_of(t) {
        let cognito = strings(&statement["Action"])
            .into_iter()
            .any(|a| a.starts_with("cognito-idp:"));
        if cognito && in_vpc.contains(&holder.as_str()) {
            problems.push(format!("{holder} calls Cognito from the VPC"));
        }
    }
    problems
}

#[test]
fn no_cognito_endpoint_in_any_layout_and_no_cognito_call_from_the_vpc() {
    let t = template();
    assert_eq!(cognito_endpoints(&t), Vec::<String>::new());

    // Planted: yesterday's Cognito endpoint, made with the others.
    let mut planted = t.clone();
    let mut endpoint = t["Resources"]["Ec2Endpoint"].clone();
    endpoint["Condition"] = "CreatesVpcEndpoints".into();
    endpoint["Properties"]["ServiceName"] =
        serde_norway::from_str("!Sub com.amazonaws.${AWS::Region}.cognito-idp").unwrap();
    planted["Resources"]["CognitoEndpoint"] = endpoint;
    let found = cognito_endpoints(&planted);
    assert!(
        found.contains(&"[create, none] parts true: creates CognitoEndpoint".to_owned()),
        "{found:?}"
    );
    assert!(
        found.iter().all(|m| m.ends_with("creates CognitoEndpoint")),
        "{found:?}"
    );

    // Planted: drift-check in the VPC listing the pool itself again.
    let mut planted = t.clone();
    let policies = &mut planted["Resources"]["DriftCheckFunction"]["Properties"]["Policies"];
    policies.as_sequence_mut().unwrap().push(
        serde_norway::from_str(
            "Statement: [{Effect: Allow, Action: cognito-idp:ListUsers, Resource: '*'}]",
        )
        .unwrap(),
    );
    assert_eq!(
        cognito_endpoints(&planted),
        ["DriftCheckFunction calls Cognito from the VPC"]
    );
}

#[test]
fn an_endpoint_is_created_only_for_a_deployed_part_that_calls_its_service() {
    let t = template();
    let created = |given: &[(&str, &str)]| -> Vec<String> {
        let mut all = network(["create", "create"], CLIENT_CIDRS[0]);
        all.extend_from_slice(given);
        let l = Layout::new(&t, &all);
        assert_eq!(l.refusals(), Vec::<String>::new(), "{given:?}");
        let mut services: Vec<String> = endpoints(&l).into_iter().map(|e| e.service).collect();
        services.sort();
        services
    };
    assert_eq!(created(&[]), ["ec2", "secretsmanager"]);
    // drift-check's users half alone (no managed group) calls Cognito from its lister, outside
    // the VPC, and never EC2.
    assert_eq!(
        created(&[("DatabaseSecurityGroupId", "")]),
        ["secretsmanager"]
    );
    // The sign-up sync alone calls Secrets Manager only (pool-trigger runs outside the VPC).
    assert_eq!(
        created(&[
            ("DeployDeveloperAccess", "false"),
            ("DeployDriftCheck", "false")
        ]),
        ["secretsmanager"]
    );
}

#[test]
fn an_ec2_endpoint_asked_for_where_no_part_calls_ec2_needs_no_vpc_or_clients() {
    let t = template();
    // The users half of drift-check alone (no managed group, no developer access), in a VPC
    // that has its own Secrets Manager endpoint: Ec2VpcEndpoint=create creates nothing, so
    // neither VpcId nor EndpointClientCidrs is asked for.
    let given = [
        ("DeployDeveloperAccess", "false"),
        ("DeployDriftCheck", "true"),
        ("DatabaseSecurityGroupId", ""),
        ("SecretsManagerVpcEndpoint", "existing"),
        ("Ec2VpcEndpoint", "create"),
    ];
    let l = Layout::new(&t, &given);
    assert!(l.condition("DriftUsers") && !l.condition("DriftRules"));
    assert!(endpoints(&l).is_empty());
    assert_eq!(l.refusals(), Vec::<String>::new());

    // With the rules half (a managed group) the endpoint is created, and both are asked for.
    let mut with_group = given.to_vec();
    with_group.push(("DatabaseSecurityGroupId", GROUP));
    let refused = Layout::new(&t, &with_group).refusals();
    assert!(
        refused.iter().any(|r| r.contains("VpcId"))
            && refused.iter().any(|r| r.contains("EndpointClientCidrs")),
        "{refused:?}"
    );
}
