//! Which verification messages `UpdateUserPool` is sent: one consistent set, the pool's own.
//!
//! DescribeUserPool may report a pool's messages twice, in `VerificationMessageTemplate` and
//! in the deprecated top-level `EmailVerificationMessage`, `EmailVerificationSubject` and
//! `SmsVerificationMessage`; and a console-made pool's template holds the code messages and
//! the link messages both, whichever `DefaultEmailOption` is chosen. UpdateUserPool refuses
//! such a set ("The message is invalid"): with `CONFIRM_WITH_CODE` it takes `EmailMessage`,
//! with `CONFIRM_WITH_LINK` `EmailMessageByLink`, never both, and never the deprecated
//! `EmailVerificationMessage` beside links (aws-cdk#6811). So the template wins, only the
//! messages of the chosen option go, and a deprecated field is sent only for a message the
//! template does not hold (all of them, for a pool made with the deprecated fields alone).

use aws_sdk_cognitoidentityprovider::types::{
    DefaultEmailOptionType, UserPoolType, VerificationMessageTemplateType,
};

/// The verification messages an UpdateUserPool request carries.
#[derive(Debug, Clone, PartialEq)]
pub struct VerificationMessages {
    pub template: Option<VerificationMessageTemplateType>,
    /// The deprecated top-level fields, each set only when the template lacks its message.
    pub email_verification_message: Option<String>,
    pub email_verification_subject: Option<String>,
    pub sms_verification_message: Option<String>,
}

/// The messages to send for `pool`, as DescribeUserPool returned it.
pub fn verification_messages(pool: &UserPoolType) -> VerificationMessages {
    let deprecated = VerificationMessages {
        template: None,
        email_verification_message: pool.email_verification_message.clone(),
        email_verification_subject: pool.email_verification_subject.clone(),
        sms_verification_message: pool.sms_verification_message.clone(),
    };
    // An empty template holds nothing to keep (moto reports one for a pool created with `{}`).
    let Some(t) = pool
        .verification_message_template
        .as_ref()
        .filter(|t| **t != VerificationMessageTemplateType::builder().build())
    else {
        return deprecated;
    };
    // SMS verification is by code whatever the email option: its message goes with either.
    let sms = t.sms_message.clone();
    let sms_verification_message = deprecated
        .sms_verification_message
        .filter(|_| sms.is_none());
    if t.default_email_option == Some(DefaultEmailOptionType::ConfirmWithLink) {
        return VerificationMessages {
            template: Some(
                VerificationMessageTemplateType::builder()
                    .default_email_option(DefaultEmailOptionType::ConfirmWithLink)
                    .set_email_message_by_link(t.email_message_by_link.clone())
                    .set_email_subject_by_link(t.email_subject_by_link.clone())
                    .set_sms_message(sms)
                    .build(),
            ),
            // The deprecated email fields are code messages: never beside links.
            email_verification_message: None,
            email_verification_subject: None,
            sms_verification_message,
        };
    }
    // CONFIRM_WITH_CODE, or no option: Cognito's default is the code.
    VerificationMessages {
        template: Some(
            VerificationMessageTemplateType::builder()
                .set_default_email_option(t.default_email_option.clone())
                .set_email_message(t.email_message.clone())
                .set_email_subject(t.email_subject.clone())
                .set_sms_message(sms)
                .build(),
        ),
        email_verification_message: deprecated
            .email_verification_message
            .filter(|_| t.email_message.is_none()),
        email_verification_subject: deprecated
            .email_verification_subject
            .filter(|_| t.email_subject.is_none()),
        sms_verification_message,
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_cognitoidentityprovider::types::{
        DefaultEmailOptionType, UserPoolType, VerificationMessageTemplateType,
    };

    use crate::settings::tests::wire_ours;

    const CODE: &str = "Your verification code is {####}. ";
    const SUBJECT: &str = "Your verification code";
    const LINK: &str =
        "Please click the link below to verify your email address. {##Verify Email##} ";
    const LINK_SUBJECT: &str = "Your verification link";
    const SMS: &str = "Your SMS code is {####}. ";

    /// The verification-message fields of the UpdateUserPool request made for `pool`, by their
    /// names in the request (`VerificationMessageTemplate` itself when a template is sent at
    /// all, even an empty one).
    fn sent(pool: &UserPoolType) -> Vec<(&'static str, String)> {
        let request = wire_ours(pool);
        let input = request.as_input();
        let mut out = Vec::new();
        let mut put = |name: &'static str, value: Option<&str>| {
            if let Some(v) = value {
                out.push((name, v.to_owned()));
            }
        };
        put(
            "EmailVerificationMessage",
            input.get_email_verification_message().as_deref(),
        );
        put(
            "EmailVerificationSubject",
            input.get_email_verification_subject().as_deref(),
        );
        put(
            "SmsVerificationMessage",
            input.get_sms_verification_message().as_deref(),
        );
        if let Some(t) = input.get_verification_message_template() {
            put("VerificationMessageTemplate", Some("sent"));
            put(
                "VerificationMessageTemplate.DefaultEmailOption",
                t.default_email_option().map(DefaultEmailOptionType::as_str),
            );
            put(
                "VerificationMessageTemplate.EmailMessage",
                t.email_message(),
            );
            put(
                "VerificationMessageTemplate.EmailSubject",
                t.email_subject(),
            );
            put(
                "VerificationMessageTemplate.EmailMessageByLink",
                t.email_message_by_link(),
            );
            put(
                "VerificationMessageTemplate.EmailSubjectByLink",
                t.email_subject_by_link(),
            );
            put("VerificationMessageTemplate.SmsMessage", t.sms_message());
        }
        out
    }

    fn owned(fields: &[(&'static str, &str)]) -> Vec<(&'static str, String)> {
        fields.iter().map(|(k, v)| (*k, (*v).to_owned())).collect()
    }

    /// What a code-mode template holding all three messages is sent as.
    const CODE_TEMPLATE: [(&str, &str); 5] = [
        ("VerificationMessageTemplate", "sent"),
        (
            "VerificationMessageTemplate.DefaultEmailOption",
            "CONFIRM_WITH_CODE",
        ),
        ("VerificationMessageTemplate.EmailMessage", CODE),
        ("VerificationMessageTemplate.EmailSubject", SUBJECT),
        ("VerificationMessageTemplate.SmsMessage", SMS),
    ];

    /// What a link-mode template is sent as: the link messages, and the SMS message, since SMS
    /// verification is always by code and its message goes with either option.
    const LINK_TEMPLATE: [(&str, &str); 5] = [
        ("VerificationMessageTemplate", "sent"),
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
    ];

    /// A pool as DescribeUserPool reports it: its `template`, and its deprecated top-level
    /// fields (the email message, the email subject, the SMS message).
    fn pool(
        template: Option<VerificationMessageTemplateType>,
        [email, subject, sms]: [Option<&str>; 3],
    ) -> UserPoolType {
        UserPoolType::builder()
            .set_verification_message_template(template)
            .set_email_verification_message(email.map(str::to_owned))
            .set_email_verification_subject(subject.map(str::to_owned))
            .set_sms_verification_message(sms.map(str::to_owned))
            .build()
    }

    /// A pool made in the console, as DescribeUserPool returns it: the template holds the code
    /// and the link messages both, whichever `option` is chosen, and the deprecated top-level
    /// fields repeat the code ones.
    fn console_pool(option: DefaultEmailOptionType) -> UserPoolType {
        let template = VerificationMessageTemplateType::builder()
            .default_email_option(option)
            .email_message(CODE)
            .email_subject(SUBJECT)
            .email_message_by_link(LINK)
            .email_subject_by_link(LINK_SUBJECT)
            .sms_message(SMS)
            .build();
        pool(Some(template), [Some(CODE), Some(SUBJECT), Some(SMS)])
    }

    #[test]
    fn a_console_pool_in_code_mode_sends_the_code_messages_in_the_template_only() {
        assert_eq!(
            sent(&console_pool(DefaultEmailOptionType::ConfirmWithCode)),
            owned(&CODE_TEMPLATE)
        );
    }

    /// aws-cdk#6811: the deprecated EmailVerificationMessage beside CONFIRM_WITH_LINK is "The
    /// message is invalid".
    #[test]
    fn a_console_pool_in_link_mode_sends_the_link_messages_in_the_template_only() {
        assert_eq!(
            sent(&console_pool(DefaultEmailOptionType::ConfirmWithLink)),
            owned(&LINK_TEMPLATE)
        );
    }

    #[test]
    fn a_cli_pool_with_only_the_deprecated_fields_sends_those() {
        let cli = pool(None, [Some(CODE), Some(SUBJECT), Some(SMS)]);
        assert_eq!(
            sent(&cli),
            owned(&[
                ("EmailVerificationMessage", CODE),
                ("EmailVerificationSubject", SUBJECT),
                ("SmsVerificationMessage", SMS),
            ])
        );
        // `create-user-pool` with no message at all: none is sent (Cognito's defaults stay).
        assert_eq!(sent(&pool(None, [None; 3])), []);
    }

    /// `AWS::Cognito::UserPool` with a VerificationMessageTemplate: sent as it is.
    #[test]
    fn a_cloudformation_pool_sends_its_template_as_it_is() {
        let code = VerificationMessageTemplateType::builder()
            .default_email_option(DefaultEmailOptionType::ConfirmWithCode)
            .email_message(CODE)
            .email_subject(SUBJECT)
            .sms_message(SMS)
            .build();
        assert_eq!(sent(&pool(Some(code), [None; 3])), owned(&CODE_TEMPLATE));
        // Without DefaultEmailOption Cognito verifies by code: the code messages go, the link
        // ones (unused) do not, and the option stays unset.
        let no_option = VerificationMessageTemplateType::builder()
            .email_message(CODE)
            .email_subject(SUBJECT)
            .email_message_by_link(LINK)
            .build();
        assert_eq!(
            sent(&pool(Some(no_option), [None; 3])),
            owned(&[
                ("VerificationMessageTemplate", "sent"),
                ("VerificationMessageTemplate.EmailMessage", CODE),
                ("VerificationMessageTemplate.EmailSubject", SUBJECT),
            ])
        );
    }

    /// A link-mode pool as aws-cdk makes it (`VerificationEmailStyle.LINK`): the link messages
    /// in the template, the SMS message in the template and in the deprecated field.
    #[test]
    fn a_link_mode_pool_never_sends_a_code_message() {
        let link = VerificationMessageTemplateType::builder()
            .default_email_option(DefaultEmailOptionType::ConfirmWithLink)
            .email_message_by_link(LINK)
            .email_subject_by_link(LINK_SUBJECT)
            .sms_message(SMS)
            .build();
        // The email code fields are left from before the pool was switched to links.
        let cdk = pool(Some(link), [Some(CODE), Some(SUBJECT), Some(SMS)]);
        assert_eq!(sent(&cdk), owned(&LINK_TEMPLATE));
    }

    /// A message only the deprecated field holds is still carried (in code mode), never twice.
    #[test]
    fn a_message_the_template_lacks_comes_from_the_deprecated_field() {
        let subject_only = VerificationMessageTemplateType::builder()
            .default_email_option(DefaultEmailOptionType::ConfirmWithCode)
            .email_subject(SUBJECT)
            .build();
        let deprecated = [Some(CODE), Some("an older subject"), Some(SMS)];
        assert_eq!(
            sent(&pool(Some(subject_only), deprecated)),
            owned(&[
                ("EmailVerificationMessage", CODE),
                ("SmsVerificationMessage", SMS),
                ("VerificationMessageTemplate", "sent"),
                (
                    "VerificationMessageTemplate.DefaultEmailOption",
                    "CONFIRM_WITH_CODE"
                ),
                ("VerificationMessageTemplate.EmailSubject", SUBJECT),
            ])
        );
    }

    /// An empty template (moto returns one for a pool created with `{}`) is no template: the
    /// deprecated fields are the pool's messages.
    #[test]
    fn an_empty_template_is_no_template() {
        let empty = VerificationMessageTemplateType::builder().build();
        let moto = pool(Some(empty), [Some(CODE), None, None]);
        assert_eq!(sent(&moto), owned(&[("EmailVerificationMessage", CODE)]));
    }
}
