//! Sign-in for the operator console: argon2id password hashes, the lock-out after repeated
//! failures, server-side sessions behind an HttpOnly/SameSite=Strict cookie, and the
//! per-session CSRF token every POST form carries. Passwords and session ids are never
//! logged; the store only ever sees a password's hash and a session id's SHA-256.

use std::sync::Arc;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};
use chrono::{DateTime, Utc};
use rand::RngCore;
use sha2::{Digest, Sha256};

use super::ConsoleError;
use crate::config::ConsoleSettings;
use crate::http::AppState;
use crate::store::{NewOperator, NewSession, Role, Store, StoreError};

pub const COOKIE: &str = "gongkai_session";
/// Passwords shorter than this are refused when an account is created.
pub const MIN_PASSWORD_CHARS: usize = 10;

/// An argon2id PHC string for `password` (default parameters: 19 MiB, 2 passes).
pub fn hash_password(password: &str) -> anyhow::Result<String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| anyhow::anyhow!("hashing a password: {e}"))
}

fn verify_password(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc)
        .map(|h| {
            Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        })
        .unwrap_or(false)
}

/// A hash that no password matches, verified for unknown names so that a wrong name takes
/// as long as a wrong password (no account enumeration by timing).
fn dummy_hash() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| hash_password("gongkai-no-such-operator").unwrap_or_default())
}

/// Creates an account of the default department (`gongkai operator add`).
pub async fn add_operator(
    store: &dyn Store,
    name: &str,
    password: &str,
    role: Role,
) -> anyhow::Result<()> {
    add_operator_in(
        store,
        crate::store::DEFAULT_DEPARTMENT,
        name,
        password,
        role,
    )
    .await
}

/// Creates an account of `department` (`gongkai --department CODE operator add`): in the
/// console it sees and changes that department's items only.
pub async fn add_operator_in(
    store: &dyn Store,
    department: &str,
    name: &str,
    password: &str,
    role: Role,
) -> anyhow::Result<()> {
    let name = name.trim();
    anyhow::ensure!(
        !name.is_empty() && name.chars().count() <= 64,
        "操作员名称不能为空，且不超过 64 个字"
    );
    anyhow::ensure!(
        password.chars().count() >= MIN_PASSWORD_CHARS,
        "密码至少 {MIN_PASSWORD_CHARS} 个字符"
    );
    let password = password.to_string();
    let password_hash = tokio::task::spawn_blocking(move || hash_password(&password)).await??;
    store
        .create_operator(
            &NewOperator {
                name: name.to_string(),
                department: department.to_string(),
                password_hash,
                role,
            },
            Utc::now(),
        )
        .await?;
    Ok(())
}

/// Why a sign-in was refused, in the words the sign-in page shows.
#[derive(Debug, PartialEq, Eq)]
pub enum SignInRefused {
    /// Wrong name or password (the page does not say which).
    Wrong,
    /// Too many failures: locked until then.
    Locked(DateTime<Utc>),
}

/// A new session: the cookie's value (the random id; never stored or logged).
pub struct NewSignIn {
    pub session_id: String,
}

fn random_token() -> String {
    let mut b = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut b);
    hex::encode(b)
}

fn id_hash(session_id: &str) -> String {
    hex::encode(Sha256::digest(session_id.as_bytes()))
}

/// Checks a name and password, applies the lock-out, and opens a session.
pub async fn sign_in(
    store: &dyn Store,
    cfg: &ConsoleSettings,
    name: &str,
    password: &str,
    now: DateTime<Utc>,
) -> Result<Result<NewSignIn, SignInRefused>, StoreError> {
    let name = name.trim();
    let operator = store.get_operator(name).await?;
    let phc = operator
        .as_ref()
        .filter(|o| !o.disabled)
        .map(|o| o.password_hash.clone())
        .unwrap_or_else(|| dummy_hash().to_string());
    let given = password.to_string();
    let ok = tokio::task::spawn_blocking(move || verify_password(&given, &phc))
        .await
        .map_err(|e| StoreError::Other(anyhow::Error::new(e)))?;
    let Some(operator) = operator.filter(|o| !o.disabled) else {
        tracing::info!("console sign-in refused: unknown or disabled account");
        return Ok(Err(SignInRefused::Wrong));
    };
    if let Some(until) = operator.locked_until.filter(|t| *t > now) {
        tracing::warn!(operator = %operator.name, %until, "console sign-in refused: account locked");
        return Ok(Err(SignInRefused::Locked(until)));
    }
    if !ok {
        let locked = store
            .record_failed_sign_in(&operator.name, now, cfg.max_failed_sign_ins, cfg.lockout)
            .await?;
        tracing::warn!(operator = %operator.name, locked = locked.is_some(), "console sign-in: wrong password");
        return Ok(Err(match locked {
            Some(until) => SignInRefused::Locked(until),
            None => SignInRefused::Wrong,
        }));
    }
    store.record_sign_in(&operator.name, now).await?;
    let session_id = random_token();
    store
        .create_session(&NewSession {
            id_sha256: id_hash(&session_id),
            operator: operator.name.clone(),
            csrf_token: random_token(),
            created_at: now,
            expires_at: now
                + chrono::Duration::from_std(cfg.session_ttl)
                    .unwrap_or_else(|_| chrono::Duration::hours(8)),
        })
        .await?;
    tracing::info!(operator = %operator.name, "console sign-in");
    Ok(Ok(NewSignIn { session_id }))
}

/// The `Set-Cookie` value of a session (or, with `None`, of its removal).
pub fn session_cookie(
    session_id: Option<&str>,
    cfg: &ConsoleSettings,
    headers: &HeaderMap,
) -> String {
    let behind_tls = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("https"));
    let secure = if cfg.secure_cookies || behind_tls {
        "; Secure"
    } else {
        ""
    };
    match session_id {
        Some(id) => format!(
            "{COOKIE}={id}; Path=/console; HttpOnly; SameSite=Strict; Max-Age={}{secure}",
            cfg.session_ttl.as_secs()
        ),
        None => format!("{COOKIE}=; Path=/console; HttpOnly; SameSite=Strict; Max-Age=0{secure}"),
    }
}

fn cookie_value<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// The signed-in operator of a request. Extracting it fails (to the sign-in page) without a
/// live session.
#[derive(Debug, Clone)]
pub struct Session {
    pub operator: String,
    /// The operator's department: every page and action is that department's.
    pub department: String,
    pub role: Role,
    pub csrf_token: String,
    id_sha256: String,
}

impl Session {
    /// Every POST form carries the session's token; a missing or wrong one refuses the action.
    pub fn check_csrf(&self, given: &str) -> Result<(), ConsoleError> {
        if !given.is_empty()
            && crate::http::constant_time_eq(given.as_bytes(), self.csrf_token.as_bytes())
        {
            Ok(())
        } else {
            tracing::warn!(operator = %self.operator, "console POST without a valid CSRF token refused");
            Err(ConsoleError::BadCsrf)
        }
    }

    pub fn require_withdraw_right(&self) -> Result<(), ConsoleError> {
        if self.role.can_withdraw() {
            Ok(())
        } else {
            Err(ConsoleError::Forbidden(format!(
                "撤回公开件需要管理员权限，您（{}）是{}。请联系管理员办理。",
                self.operator,
                self.role.label()
            )))
        }
    }

    pub async fn sign_out(&self, store: &dyn Store) -> Result<(), StoreError> {
        tracing::info!(operator = %self.operator, "console sign-out");
        store.delete_session(&self.id_sha256).await
    }
}

impl FromRequestParts<AppState> for Session {
    type Rejection = ConsoleError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let Some(id) = cookie_value(&parts.headers, COOKIE).filter(|v| !v.is_empty()) else {
            return Err(ConsoleError::NotSignedIn);
        };
        let id_sha256 = id_hash(id);
        let store: &Arc<dyn Store> = &state.ledger.store;
        match store.get_session(&id_sha256, Utc::now()).await? {
            Some(s) => Ok(Session {
                operator: s.operator,
                department: s.department,
                role: s.role,
                csrf_token: s.csrf_token,
                id_sha256,
            }),
            None => Err(ConsoleError::NotSignedIn),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_verifies_against_its_own_hash_only() {
        let h = hash_password("正确的密码-123456").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password("正确的密码-123456", &h));
        assert!(!verify_password("错误的密码-123456", &h));
        assert!(!verify_password("x", "not a phc string"));
    }

    #[test]
    fn the_session_cookie_is_http_only_strict_and_secure_behind_tls() {
        let cfg = ConsoleSettings::default();
        let plain = session_cookie(Some("abc"), &cfg, &HeaderMap::new());
        assert!(plain.contains("HttpOnly") && plain.contains("SameSite=Strict"));
        assert!(!plain.contains("Secure"));
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-proto", "https".parse().unwrap());
        assert!(session_cookie(Some("abc"), &cfg, &h).contains("; Secure"));
    }

    #[test]
    fn cookies_are_found_among_others() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            "a=1; gongkai_session=xyz; b=2".parse().unwrap(),
        );
        assert_eq!(cookie_value(&h, COOKIE), Some("xyz"));
    }
}
