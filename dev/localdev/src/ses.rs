//! The sender's SES identity: SES refuses to send from an address that no verified identity
//! covers, and in moto `CreateEmailIdentity` is the verification.

use std::sync::{Arc, Mutex};

use aws_sdk_secretsmanager::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_secretsmanager::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_secretsmanager::error::{BoxError, DisplayErrorContext};

use crate::error::{Error, Result};
use crate::template::Template;

/// The template parameter holding the From address of every mail.
pub const SENDER_PARAMETER: &str = "SenderEmail";

/// The URI of the last request a client sent.
#[derive(Debug, Clone, Default)]
struct SentTo(Arc<Mutex<Option<http::Uri>>>);

impl Intercept for SentTo {
    fn name(&self) -> &'static str {
        "SentTo"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let uri = context.request().uri().parse().ok();
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = uri;
        Ok(())
    }
}

/// Creates the identity of the template's sender (its `SenderEmail`, if it has one) in the SES
/// of the moto `secrets` talks to: one moto serves both, and its endpoint is learnt from a call,
/// so that a client configured any way reaches the same moto. Idempotent.
pub async fn ensure_sender(template: &Template, secrets: &aws_sdk_secretsmanager::Client) -> Result<()> {
    let Some(sender) = template.parameter(SENDER_PARAMETER) else { return Ok(()) };
    let sent_to = SentTo::default();
    secrets
        .list_secrets()
        .max_results(1)
        .customize()
        .interceptor(sent_to.clone())
        .send()
        .await
        .map_err(|e| Error::Aws(format!("ListSecrets: {}", DisplayErrorContext(e))))?;
    let uri = sent_to.0.lock().unwrap_or_else(|e| e.into_inner()).take();
    let endpoint = uri
        .and_then(|uri| Some(format!("{}://{}", uri.scheme_str()?, uri.authority()?)))
        .ok_or_else(|| Error::Aws("cannot tell where Secrets Manager is".into()))?;
    // moto puts every caller with such a key in one account: the one the IAM check's calls use.
    let credentials = aws_sdk_sesv2::config::Credentials::new("local", "local", None, None, "localdev");
    let ses = aws_sdk_sesv2::Config::builder()
        .behavior_version_latest()
        .region(secrets.config().region().cloned())
        .credentials_provider(credentials)
        .endpoint_url(endpoint)
        .build();
    let created = aws_sdk_sesv2::Client::from_conf(ses).create_email_identity().email_identity(sender).send().await;
    match created {
        Ok(_) => Ok(()),
        Err(e) if e.as_service_error().is_some_and(|e| e.is_already_exists_exception()) => Ok(()),
        Err(e) => Err(Error::Aws(format!("CreateEmailIdentity {sender}: {}", DisplayErrorContext(e)))),
    }
}
