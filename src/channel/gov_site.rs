//! The government website channel: the generic JSON push contract of domain.md §4.4.
//! Owns: signing (`X-Signature` = HMAC-SHA256 over method, path, timestamp, nonce and the
//! body's SHA-256), the request, and the classification of the platform's answers into
//! transient or permanent failures. The body is rendered elsewhere (templates); this module
//! sends it byte for byte, with an `Idempotency-Key` that is the same on every attempt, so an
//! ambiguous failure can be retried without the platform ever making a duplicate.

use std::time::Duration;

use async_trait::async_trait;
use hmac::{Hmac, Mac};
use reqwest::header::{HeaderMap, CONTENT_TYPE, RETRY_AFTER};
use reqwest::StatusCode;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::{Channel, DeliveryError, DeliveryRequest, FailureClass, Progress, Receipt, Sent};
use crate::config::{GovSiteConfig, Secret};
use crate::domain::{Action, ChannelKind};

/// hex(HMAC-SHA256(secret, METHOD \n PATH \n TIMESTAMP \n NONCE \n hex(SHA256(body)))).
pub fn signature(
    secret: &str,
    method: &str,
    path: &str,
    timestamp: &str,
    nonce: &str,
    body: &[u8],
) -> String {
    let body_hash = hex::encode(Sha256::digest(body));
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(format!("{method}\n{path}\n{timestamp}\n{nonce}\n{body_hash}").as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

pub struct GovSite {
    name: String,
    template: String,
    endpoint: reqwest::Url,
    app_key: String,
    secret: Secret,
    timeout: Duration,
    client: reqwest::Client,
}

impl GovSite {
    /// Builds the client; reads the secret; no network I/O.
    pub fn new(name: &str, cfg: GovSiteConfig) -> anyhow::Result<Self> {
        let secret = cfg
            .secret
            .read()
            .map_err(|e| anyhow::anyhow!("渠道 {name}：签名密钥：{e}"))?;
        let endpoint = reqwest::Url::parse(&format!("{}/v1/disclosures", cfg.base_url))
            .map_err(|e| anyhow::anyhow!("渠道 {name}：base_url {:?} 无效：{e}", cfg.base_url))?;
        let client = reqwest::Client::builder()
            .timeout(cfg.timeout)
            .connect_timeout(cfg.timeout.min(Duration::from_secs(5)))
            .user_agent(concat!("gongkai/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(GovSite {
            name: name.to_string(),
            template: cfg.template,
            endpoint,
            app_key: cfg.app_key,
            secret,
            timeout: cfg.timeout,
            client,
        })
    }

    fn headers(&self, request: &DeliveryRequest) -> HeaderMap {
        let timestamp = chrono::Utc::now().timestamp().to_string();
        let nonce = uuid::Uuid::new_v4().to_string();
        let sig = signature(
            self.secret.expose(),
            "POST",
            self.endpoint.path(),
            &timestamp,
            &nonce,
            &request.payload,
        );
        let mut h = HeaderMap::new();
        let mut put = |k: &'static str, v: &str| {
            h.insert(
                k,
                v.parse()
                    .expect("header values here are ASCII we generated"),
            );
        };
        put("content-type", "application/json; charset=utf-8");
        put("x-app-key", &self.app_key);
        put("x-timestamp", &timestamp);
        put("x-nonce", &nonce);
        put("x-signature", &sig);
        // The key may carry non-ASCII disclosure ids; percent-encode what a header can't hold.
        put("idempotency-key", &header_safe(&request.idempotency_key));
        h
    }
}

fn header_safe(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_graphic() && b != b'%' {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The platform's success answer.
#[derive(Debug, Deserialize)]
struct PushResponse {
    platform_doc_id: Option<String>,
    url: Option<String>,
    status: Option<String>,
}

/// The platform's error answer.
#[derive(Debug, Deserialize)]
struct PlatformError {
    error: Option<String>,
    message: Option<String>,
}

#[async_trait]
impl Channel for GovSite {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> ChannelKind {
        ChannelKind::GovSite
    }

    fn template(&self) -> &str {
        &self.template
    }

    fn check_payload(&self, payload: &[u8]) -> Result<(), String> {
        serde_json::from_slice::<serde_json::Value>(payload)
            .map(|_| ())
            .map_err(|e| format!("模板生成的内容不是合法 JSON：{e}"))
    }

    /// One request, made idempotent by the platform: no progress to keep.
    async fn deliver(
        &self,
        request: &DeliveryRequest,
        _progress: &mut dyn Progress,
    ) -> Result<Sent, DeliveryError> {
        let response = self
            .client
            .post(self.endpoint.clone())
            .headers(self.headers(request))
            .body(request.payload.clone())
            .send()
            .await
            .map_err(|e| self.transport_error(&e))?;
        let status = response.status();
        let retry_after = parse_retry_after(response.headers());
        let is_json = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("json"));
        let body = response
            .bytes()
            .await
            .map_err(|e| self.transport_error(&e))?;
        classify(request.action, status, retry_after, is_json, &body).map(Sent::Done)
    }
}

impl GovSite {
    fn transport_error(&self, e: &reqwest::Error) -> DeliveryError {
        let detail = if e.is_timeout() {
            format!(
                "请求平台超时（{}s）：平台可能已收到，将以同一幂等键重试，不会重复发布",
                self.timeout.as_secs_f32()
            )
        } else if e.is_connect() {
            format!("无法连接网站平台 {}：{}", self.endpoint, root_cause(e))
        } else {
            format!("与网站平台通信失败：{}", root_cause(e))
        };
        DeliveryError::transient(detail)
    }
}

fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}

/// Turns the platform's answer into a receipt or a classified failure.
fn classify(
    action: Action,
    status: StatusCode,
    retry_after: Option<Duration>,
    is_json: bool,
    body: &[u8],
) -> Result<Receipt, DeliveryError> {
    let code = Some(status.as_u16());
    if status.is_success() {
        let parsed: Option<PushResponse> = serde_json::from_slice(body).ok();
        let detail = match &parsed {
            Some(p) => p.status.as_ref().map(|s| format!("平台状态：{s}")),
            None => Some("平台已接收（应答不是预期的 JSON）".to_string()),
        };
        return Ok(Receipt {
            remote_id: parsed.as_ref().and_then(|p| p.platform_doc_id.clone()),
            url: parsed.and_then(|p| p.url),
            http_status: code,
            detail,
        });
    }
    let platform: Option<PlatformError> = if is_json {
        serde_json::from_slice(body).ok()
    } else {
        None
    };
    let remote_code = platform.as_ref().and_then(|p| p.error.clone());
    let said = platform
        .as_ref()
        .and_then(|p| p.message.clone())
        .unwrap_or_else(|| String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned());
    // A withdrawal of an item the platform never had leaves the platform as we want it.
    if action == Action::Withdraw && status == StatusCode::NOT_FOUND {
        return Ok(Receipt {
            http_status: code,
            detail: Some("平台上没有该稿件，无需撤回".into()),
            ..Receipt::default()
        });
    }
    let (class, what) = match status.as_u16() {
        408 => (FailureClass::Transient, "平台请求超时"),
        429 => (FailureClass::Transient, "平台限流"),
        500..=599 => (FailureClass::Transient, "平台暂时故障"),
        401 | 403 => (
            FailureClass::Permanent,
            "平台拒绝认证：请核对 app_key、签名密钥和服务器时钟",
        ),
        409 => (
            FailureClass::Permanent,
            "平台报告冲突：同一幂等键的内容不同或版本过旧",
        ),
        _ => (FailureClass::Permanent, "平台拒收"),
    };
    Err(DeliveryError {
        class,
        retry_after,
        http_status: code,
        remote_code,
        detail: format!("{what}（HTTP {}）：{said}", status.as_u16()),
    })
}

/// `Retry-After` as seconds or an HTTP date.
fn parse_retry_after(headers: &HeaderMap) -> Option<Duration> {
    let v = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = chrono::DateTime::parse_from_rfc2822(v).ok()?;
    let secs = (when.timestamp() - chrono::Utc::now().timestamp()).max(0);
    Some(Duration::from_secs(secs as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_follows_the_contract() {
        // Computed independently with openssl:
        // printf 'POST\n/v1/disclosures\n1700000000\nn-1\n'"$(printf '{}' | sha256sum | cut -d' ' -f1)"
        //   | openssl dgst -sha256 -hmac s3cret
        let sig = signature(
            "s3cret",
            "POST",
            "/v1/disclosures",
            "1700000000",
            "n-1",
            b"{}",
        );
        assert_eq!(
            sig,
            "8cbc5b16e031a86c673ddcd353c4f62f60859cbd7a0a1b69ca8f96c363a9e5f3"
        );
        assert_ne!(
            sig,
            signature(
                "s3cret",
                "POST",
                "/v1/disclosures",
                "1700000000",
                "n-1",
                b"{ }"
            )
        );
    }

    #[test]
    fn answers_are_classified_as_the_contract_says() {
        let cases: &[(u16, Action, Option<FailureClass>)] = &[
            (201, Action::Publish, None),
            (200, Action::Withdraw, None),
            (404, Action::Withdraw, None),
            (404, Action::Publish, Some(FailureClass::Permanent)),
            (408, Action::Publish, Some(FailureClass::Transient)),
            (429, Action::Publish, Some(FailureClass::Transient)),
            (500, Action::Publish, Some(FailureClass::Transient)),
            (503, Action::Publish, Some(FailureClass::Transient)),
            (400, Action::Publish, Some(FailureClass::Permanent)),
            (401, Action::Publish, Some(FailureClass::Permanent)),
            (409, Action::Publish, Some(FailureClass::Permanent)),
            (422, Action::Publish, Some(FailureClass::Permanent)),
        ];
        for &(status, action, want) in cases {
            let got = classify(
                action,
                StatusCode::from_u16(status).unwrap(),
                None,
                true,
                br#"{"error":"x","message":"m"}"#,
            );
            assert_eq!(got.err().map(|e| e.class), want, "HTTP {status} {action}");
        }
    }

    #[test]
    fn platform_reason_and_doc_id_are_kept() {
        let ok = classify(
            Action::Publish,
            StatusCode::CREATED,
            None,
            true,
            br#"{"platform_doc_id":"D1","url":"http://x/1.html","status":"published"}"#,
        )
        .unwrap();
        assert_eq!(ok.remote_id.as_deref(), Some("D1"));
        assert_eq!(ok.url.as_deref(), Some("http://x/1.html"));
        let err = classify(
            Action::Publish,
            StatusCode::UNPROCESSABLE_ENTITY,
            None,
            true,
            r#"{"error":"missing_title","message":"缺少标题"}"#.as_bytes(),
        )
        .unwrap_err();
        assert_eq!(err.remote_code.as_deref(), Some("missing_title"));
        assert!(err.detail.contains("缺少标题"), "{}", err.detail);
    }

    #[test]
    fn retry_after_in_seconds_is_read() {
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, "7".parse().unwrap());
        assert_eq!(parse_retry_after(&h), Some(Duration::from_secs(7)));
    }
}
