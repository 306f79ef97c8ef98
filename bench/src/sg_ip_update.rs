//! Section 6, first half: sg-ip-update moving one IP back and forth in a security group on moto.

use anyhow::Result;
use harness::aws;
use serde_json::json;

use crate::{
    setup::Setup,
    stats::ms,
    subjects::{Subject, is_ok},
};

pub struct SgIpUpdate {
    pub warm_ms: Vec<f64>,
    pub errors: usize,
}

/// 200 warm IP moves in one environment.
pub async fn measure(s: &Setup) -> Result<SgIpUpdate> {
    let group = aws::create_group(&s.ec2).await;
    s.admin
        .execute(
            // Bare direct invocations prove no sender: the row must allow them.
            "INSERT INTO managed_ingress_rules (security_group_id, owner, allow_unverified) VALUES ($1, 'bench', true)",
            &[&group],
        )
        .await?;
    let mut sg_env = s.db.url_env();
    sg_env.push(("SECURITY_GROUP_ID".into(), group.clone()));
    sg_env.push(("SG_IP_UPDATE_SOURCE".into(), "eventbridge".into()));
    let sg = Subject::Rust {
        name: "sg-ip-update",
        env: sg_env,
    };
    let f = sg.spawn(s).await?;
    let mut sg_ms = Vec::new();
    let mut sg_errors = 0;
    for i in 0..200 {
        let ip = if i % 2 == 0 {
            "34.201.17.5"
        } else {
            "52.14.99.8"
        };
        let inv = f.invoke(&json!({"owner": "bench", "ip": ip})).await;
        sg_errors += usize::from(!is_ok(&inv.outcome));
        sg_ms.push(ms(inv.elapsed));
    }
    f.stop().await;
    Ok(SgIpUpdate {
        warm_ms: sg_ms,
        errors: sg_errors,
    })
}
