//! Row types of the operator console's part of the store (issue 8): operator accounts,
//! sessions, the disclosure query of the day list and the per-channel counts that the
//! health page and `/metrics` read. The SQL is one text for both backends (`console_sql.rs`).

use chrono::{DateTime, Utc};
use serde::Serialize;

/// What an operator may do in the console.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Sees everything, retries deliveries.
    Operator,
    /// Also withdraws (撤回) disclosures.
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Role::Operator => "操作员",
            Role::Admin => "管理员",
        }
    }

    pub fn can_withdraw(self) -> bool {
        self == Role::Admin
    }
}

impl std::str::FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "operator" => Ok(Role::Operator),
            "admin" => Ok(Role::Admin),
            other => Err(format!("未知角色 {other:?}：可选 operator 或 admin")),
        }
    }
}

/// An account to create.
#[derive(Debug, Clone)]
pub struct NewOperator {
    pub name: String,
    /// The department whose items the account sees and changes in the console.
    pub department: String,
    /// argon2id PHC string.
    pub password_hash: String,
    pub role: Role,
}

#[derive(Debug, Clone, Serialize)]
pub struct OperatorRow {
    pub name: String,
    pub department: String,
    #[serde(skip)]
    pub password_hash: String,
    pub role: Role,
    pub disabled: bool,
    pub failed_sign_ins: i64,
    pub locked_until: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub last_sign_in_at: Option<DateTime<Utc>>,
}

/// A session to store: the SHA-256 (hex) of the cookie's random id, never the id itself.
#[derive(Debug, Clone)]
pub struct NewSession {
    pub id_sha256: String,
    pub operator: String,
    pub csrf_token: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// A live session with its operator (only returned while unexpired and the account enabled).
#[derive(Debug, Clone)]
pub struct SessionRow {
    pub operator: String,
    /// The operator's department.
    pub department: String,
    pub role: Role,
    pub csrf_token: String,
    pub expires_at: DateTime<Utc>,
}

/// The console's disclosure list: the latest revision of each disclosure.
#[derive(Debug, Clone, Default)]
pub struct DisclosureQuery {
    /// Received at or after.
    pub received_from: Option<DateTime<Utc>>,
    /// Received before.
    pub received_before: Option<DateTime<Utc>>,
    pub category: Option<String>,
    /// A part of the title or of the disclosure id.
    pub text: Option<String>,
    /// Only these disclosures (empty = any).
    pub disclosure_ids: Vec<String>,
    pub limit: i64,
}

/// How many deliveries of a channel are in a status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeliveryCount {
    pub channel: String,
    pub status: crate::domain::DeliveryStatus,
    pub count: i64,
}

/// When a channel last delivered a publish delivery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LastDelivered {
    pub channel: String,
    pub at: DateTime<Utc>,
}
