//! The pool-trigger custom resource against moto's Cognito: each kind of pool (made in the
//! console with a code or a link, by CloudFormation, by the CLI) is sent one consistent set of
//! verification messages, its own, as moto's request recorder shows (moto stores whatever it
//! is sent, even settings Cognito refuses together).

use std::collections::BTreeMap;

use aws_sdk_cognitoidentityprovider::{
    Client,
    types::{DefaultEmailOptionType, VerificationMessageTemplateType},
};
use harness::{Stack, recorder::ResponseRecorder};
use serde_json::Value;

#[path = "common/user_pool.rs"]
mod user_pool;
use user_pool::{describe, pool_trigger, properties, request, update_bodies};

/// The verification messages of an `UpdateUserPool` body, by name: the deprecated top-level
/// fields, and the template's as `VerificationMessageTemplate.<field>`.
fn verification_messages(body: &Value) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for name in [
        "EmailVerificationMessage",
        "EmailVerificationSubject",
        "SmsVerificationMessage",
    ] {
        if let Some(v) = body[name].as_str() {
            out.insert(name.to_owned(), v.to_owned());
        }
    }
    for (field, v) in body["VerificationMessageTemplate"]
        .as_object()
        .into_iter()
        .flatten()
    {
        if let Some(v) = v.as_str() {
            out.insert(format!("VerificationMessageTemplate.{field}"), v.to_owned());
        }
    }
    out
}

fn expected(fields: &[(&str, &str)]) -> BTreeMap<String, String> {
    fields
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// UpdateUserPool refuses the code and the link messages together, and the deprecated
/// EmailVerificationMessage beside CONFIRM_WITH_LINK ("The message is invalid", aws-cdk#6811).
/// moto checks neither and stores what it is sent, so the test reads the request itself: for a
/// pool made in each way, one consistent set of messages, the pool's own.
#[tokio::test]
async fn each_kind_of_pool_is_sent_one_consistent_set_of_verification_messages() {
    const CODE: &str = "Your verification code is {####}. ";
    const SUBJECT: &str = "Your verification code";
    const LINK: &str =
        "Please click the link below to verify your email address. {##Verify Email##} ";
    const LINK_SUBJECT: &str = "Your verification link";
    const SMS: &str = "Your SMS code is {####}. ";
    let stack = Stack::private("moto").unwrap();
    let cognito = Client::new(&stack.sdk_config().await);
    let recorder = ResponseRecorder::start().await.unwrap();
    let f = pool_trigger(&stack).await;

    // The console's: the template holds the code and the link messages both, and the
    // deprecated fields repeat the code ones.
    let console = |option: DefaultEmailOptionType| {
        VerificationMessageTemplateType::builder()
            .default_email_option(option)
            .email_message(CODE)
            .email_subject(SUBJECT)
            .email_message_by_link(LINK)
            .email_subject_by_link(LINK_SUBJECT)
            .sms_message(SMS)
            .build()
    };
    let deprecated = (Some(CODE), Some(SUBJECT), Some(SMS));
    let code_template = [
        (
            "VerificationMessageTemplate.DefaultEmailOption",
            "CONFIRM_WITH_CODE",
        ),
        ("VerificationMessageTemplate.EmailMessage", CODE),
        ("VerificationMessageTemplate.EmailSubject", SUBJECT),
        ("VerificationMessageTemplate.SmsMessage", SMS),
    ];
    let shapes = [
        (
            "console-code",
            Some(console(DefaultEmailOptionType::ConfirmWithCode)),
            deprecated,
            expected(&code_template),
        ),
        (
            "console-link",
            Some(console(DefaultEmailOptionType::ConfirmWithLink)),
            deprecated,
            expected(&[
                (
                    "VerificationMessageTemplate.DefaultEmailOption",
                    "CONFIRM_WITH_LINK",
                ),
                ("VerificationMessageTemplate.EmailMessageByLink", LINK),
                (
                    "VerificationMessageTemplate.EmailSubjectByLink",
                    LINK_SUBJECT,
                ),
                ("VerificationMessageTemplate.SmsMessage", SMS),
            ]),
        ),
        // AWS::Cognito::UserPool's VerificationMessageTemplate alone; moto then reports the
        // deprecated fields too, copied from the template.
        (
            "cloudformation",
            Some(
                VerificationMessageTemplateType::builder()
                    .default_email_option(DefaultEmailOptionType::ConfirmWithCode)
                    .email_message(CODE)
                    .email_subject(SUBJECT)
                    .sms_message(SMS)
                    .build(),
            ),
            (None, None, None),
            expected(&code_template),
        ),
        // `create-user-pool` with the deprecated fields only. moto gives every pool created
        // without a template its own default one; an empty template is how it keeps none.
        (
            "cli",
            Some(VerificationMessageTemplateType::builder().build()),
            deprecated,
            expected(&[
                ("EmailVerificationMessage", CODE),
                ("EmailVerificationSubject", SUBJECT),
                ("SmsVerificationMessage", SMS),
            ]),
        ),
    ];
    for (name, template, (email, subject, sms), want) in shapes {
        let pool = cognito
            .create_user_pool()
            .pool_name(format!("{name}-{}", uuid::Uuid::new_v4().simple()))
            .set_verification_message_template(template)
            .set_email_verification_message(email.map(str::to_owned))
            .set_email_verification_subject(subject.map(str::to_owned))
            .set_sms_verification_message(sms.map(str::to_owned))
            .send()
            .await
            .expect("create_user_pool")
            .user_pool()
            .and_then(|p| p.id())
            .expect("pool id")
            .to_owned();
        let before = describe(&cognito, &pool).await;
        eprintln!(
            "{name}: DescribeUserPool: template {:?}, EmailVerificationMessage {:?}, \
             EmailVerificationSubject {:?}, SmsVerificationMessage {:?}",
            before.verification_message_template,
            before.email_verification_message,
            before.email_verification_subject,
            before.sms_verification_message
        );

        stack.start_recording();
        let a = request(
            &f,
            &recorder,
            name,
            "Create",
            None,
            properties(&pool, "false"),
        )
        .await;
        assert_eq!(a["Status"], "SUCCESS", "{name}: {a}");
        let sent = update_bodies(&stack);
        assert_eq!(sent.len(), 1, "{name}: {sent:?}");
        assert_eq!(verification_messages(&sent[0]), want, "{name}: {}", sent[0]);
    }
}
