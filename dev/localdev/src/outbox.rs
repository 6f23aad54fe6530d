//! The local outbox: every mail the local IAM check forwarded to SES and SES accepted.
//!
//! moto keeps only the HTML part of a mail, and only behind an internal endpoint, so the check
//! keeps each message itself, as the function asked SES to send it. It serves them on
//! `GET /_local/outbox` (newest first, no signature: a local development route) and prints one
//! line per message with the links of its text body, which is how a developer opens a
//! verification link locally. Messages live in the check's memory until it stops.

use std::collections::VecDeque;
use std::sync::Mutex;

use bytes::Bytes;
use http::{Method, Request, Uri};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde::{Deserialize, Serialize};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::error::{Error, Result};
use crate::iam::SendEmail;

/// The route that lists the messages, on the IAM check and on the local gateway.
pub const PATH: &str = "/_local/outbox";

/// Enough for a long `make local` session; the oldest messages go first.
const KEPT: usize = 10_000;

/// One mail SES accepted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// SES's `MessageId`.
    pub id: String,
    pub to: Vec<String>,
    pub from: String,
    pub subject: String,
    pub text: String,
    pub html: String,
    /// RFC 3339, UTC.
    pub sent_at: String,
}

impl Message {
    pub fn new(id: String, mail: &SendEmail) -> Self {
        let sent_at = OffsetDateTime::now_utc().format(&Rfc3339).unwrap_or_default();
        Self {
            id,
            to: mail.to.clone(),
            from: mail.from.clone(),
            subject: mail.subject.clone(),
            text: mail.text.clone(),
            html: mail.html.clone(),
            sent_at,
        }
    }

    /// Every http(s) link of the text body, in order.
    pub fn links(&self) -> Vec<&str> {
        self.text
            .split(|c: char| c.is_whitespace() || matches!(c, '<' | '>' | '"' | '\'' | '(' | ')' | '[' | ']'))
            .filter(|word| word.starts_with("https://") || word.starts_with("http://"))
            .map(|link| link.trim_end_matches(['.', ',', ';', ':', '!', '?']))
            .collect()
    }

    /// The line printed when the message is sent.
    pub fn summary(&self) -> String {
        let mut line = format!("mail to {}: {:?}", self.to.join(", "), self.subject);
        for link in self.links() {
            line.push_str("\n  ");
            line.push_str(link);
        }
        line
    }
}

/// The messages of one IAM check.
#[derive(Debug, Default)]
pub struct Outbox(Mutex<VecDeque<Message>>);

impl Outbox {
    pub fn push(&self, message: Message) {
        let mut messages = self.0.lock().unwrap_or_else(|e| e.into_inner());
        messages.push_front(message);
        messages.truncate(KEPT);
    }

    /// Newest first.
    pub fn messages(&self) -> Vec<Message> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).iter().cloned().collect()
    }
}

/// The messages of the IAM check at `iam_url` (e.g. `make test`'s `LOCAL_IAM_ENDPOINT`), newest
/// first.
pub async fn fetch(iam_url: &str) -> Result<Vec<Message>> {
    let uri: Uri = format!("{}{PATH}", iam_url.trim_end_matches('/'))
        .parse()
        .map_err(|e| Error::Override(format!("bad IAM check URL {iam_url}: {e}")))?;
    let request = Request::builder()
        .method(Method::GET)
        .uri(uri)
        .body(Full::new(Bytes::new()))
        .map_err(|e| Error::Aws(e.to_string()))?;
    let client = Client::builder(TokioExecutor::new()).build_http();
    let unreachable = |e: &dyn std::fmt::Display| Error::Aws(format!("GET {iam_url}{PATH}: {e}"));
    let response = client.request(request).await.map_err(|e| unreachable(&e))?;
    let status = response.status();
    let body = response.into_body().collect().await.map_err(|e| unreachable(&e))?.to_bytes();
    if !status.is_success() {
        return Err(unreachable(&status));
    }
    serde_json::from_slice(&body).map_err(|e| unreachable(&e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(subject: &str, text: &str) -> Message {
        let mail = SendEmail {
            from: "no-reply@example.com".into(),
            to: vec!["ada@example.org".into()],
            recipients: vec!["ada@example.org".into()],
            subject: subject.into(),
            text: text.into(),
            html: String::new(),
        };
        Message::new("id-1".into(), &mail)
    }

    #[test]
    fn given_a_text_body_then_its_http_links_are_found_in_order() {
        // GIVEN a body with two links, punctuation after one and an address that is no link
        let text = "Open https://app.example.com/verify-email#token=abc_DEF-1. Or (http://localhost:3000/x)\n\
                    Mail ada@example.org, ftp://nope";
        // WHEN the links are read
        let message = message("Verify", text);
        // THEN both links, whole, in order
        assert_eq!(
            message.links(),
            ["https://app.example.com/verify-email#token=abc_DEF-1", "http://localhost:3000/x"]
        );
        assert_eq!(
            message.summary(),
            "mail to ada@example.org: \"Verify\"\n  https://app.example.com/verify-email#token=abc_DEF-1\n  \
             http://localhost:3000/x"
        );
    }

    #[test]
    fn given_messages_then_the_newest_is_first_and_sent_at_is_rfc3339_utc() {
        let outbox = Outbox::default();
        outbox.push(message("first", ""));
        outbox.push(message("second", ""));
        let subjects: Vec<_> = outbox.messages().into_iter().map(|m| m.subject).collect();
        assert_eq!(subjects, ["second", "first"]);
        let sent_at = OffsetDateTime::parse(&outbox.messages()[0].sent_at, &Rfc3339).unwrap();
        assert_eq!(sent_at.offset(), time::UtcOffset::UTC);
    }
}
