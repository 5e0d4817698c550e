//! The delivery ledger's behaviour, told over `Arc<dyn Store>` so that every backend runs
//! the same story: `story` walks one disclosure through its life, the smaller tests pin one
//! rule each. Every test runs twice: on a fresh SQLite file in its own temporary directory
//! (`sqlite::*`), and on a fresh PostgreSQL database (`postgres::*`) when
//! `GONGKAI_TEST_DATABASE_URL` names a server (otherwise those pass and say they were
//! skipped).
//! Time is passed in explicitly (`t(seconds)`), so nothing here sleeps.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use gongkai::domain::{Action, AttemptOutcome, AttemptTrigger, ChannelKind, DeliveryStatus};
use gongkai::store::{
    Claimed, Completion, DeliveryFilter, IngestOutcome, MessageClaim, NewAttempt, NewDelivery,
    NewDisclosure, NextState, RetryResult, SearchMatch, Store, StoreError, WithdrawOutcome,
};
use tempfile::TempDir;

const LEASE: Duration = Duration::from_secs(60);
/// The department of the tests that are not about departments.
const DEPT: &str = gongkai::store::DEFAULT_DEPARTMENT;

#[path = "support/pg.rs"]
mod pg;

/// A fresh, empty database of either backend; keep it alive as long as its stores.
struct Db {
    url: String,
    _dir: Option<TempDir>,
    _pg: Option<pg::TestDatabase>,
}

impl Db {
    fn sqlite() -> Db {
        let dir = tempfile::tempdir().expect("create a temporary directory");
        Db {
            url: format!("sqlite://{}", dir.path().join("gongkai.db").display()),
            _dir: Some(dir),
            _pg: None,
        }
    }

    /// `None` when no PostgreSQL server is configured for tests.
    async fn postgres() -> Option<Db> {
        let database = pg::TestDatabase::create().await?;
        Some(Db {
            url: database.url.clone(),
            _dir: None,
            _pg: Some(database),
        })
    }

    /// A store on this database; several stand in for several processes.
    async fn connect(&self) -> Arc<dyn Store> {
        gongkai::store::connect(&self.url)
            .await
            .unwrap_or_else(|e| panic!("open the store {}: {e:#}", self.url))
    }
}

/// Runs each named `async fn(Db)` on both backends, as `sqlite::name` and `postgres::name`.
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::Db::sqlite()).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if let Some(db) = super::Db::postgres().await {
                        super::$name(db).await
                    }
                }
            )*
        }
    };
}

/// Seconds after a fixed instant.
fn t(seconds: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 3, 1, 8, 0, 0).unwrap() + chrono::Duration::seconds(seconds)
}

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

fn revision(id: &str, revision: i64, content: &str) -> NewDisclosure {
    NewDisclosure {
        disclosure_id: id.to_string(),
        revision,
        title: format!("关于{content}的通知"),
        category: "通知公告".to_string(),
        publish_date: Some(date(2025, 3, 1)),
        formed_date: date(2025, 2, 28),
        content_hash: format!("hash-of-{content}"),
        json: format!(r#"{{"id":"{id}","revision":{revision},"body":"{content}"}}"#),
        submitted_by: "api".to_string(),
    }
}

fn to(channels: &[&str]) -> Vec<NewDelivery> {
    channels
        .iter()
        .map(|c| NewDelivery {
            channel: c.to_string(),
            kind: ChannelKind::GovSite,
        })
        .collect()
}

/// Stores a revision that must be new, returning its delivery ids.
async fn ingest(
    store: &Arc<dyn Store>,
    new: NewDisclosure,
    channels: &[&str],
    now: DateTime<Utc>,
) -> Vec<i64> {
    match store
        .insert_disclosure(DEPT, &new, &to(channels), now)
        .await
    {
        Ok(IngestOutcome::Created { delivery_ids }) => delivery_ids,
        other => panic!("expected a new revision, got {other:?}"),
    }
}

async fn claim(store: &Arc<dyn Store>, instance: &str, now: DateTime<Utc>) -> Vec<Claimed> {
    store
        .claim_due(instance, now, LEASE, 100)
        .await
        .expect("claim due deliveries")
}

fn ids(claims: &[Claimed]) -> Vec<i64> {
    claims.iter().map(|c| c.delivery.id).collect()
}

fn outcome_of(next: &NextState) -> AttemptOutcome {
    match next {
        NextState::Delivered { .. } => AttemptOutcome::Delivered,
        NextState::Retry { .. } => AttemptOutcome::Transient,
        NextState::Dead { .. } => AttemptOutcome::Permanent,
        NextState::Awaiting { .. } => AttemptOutcome::Pending,
    }
}

/// Finishes a claimed attempt the way the worker does.
async fn complete(
    store: &Arc<dyn Store>,
    claimed: &Claimed,
    instance: &str,
    next: NextState,
    finished_at: DateTime<Utc>,
) {
    let detail = match &next {
        NextState::Delivered { .. } => None,
        NextState::Retry { error, .. } | NextState::Dead { error } => Some(error.clone()),
        NextState::Awaiting { note, .. } => Some(note.clone()),
    };
    let completion = Completion {
        delivery_id: claimed.delivery.id,
        claim_token: claimed.claim_token.clone(),
        attempt: NewAttempt {
            number: claimed.attempt_number,
            trigger: claimed.trigger,
            requested_by: claimed.requested_by.clone(),
            instance: instance.to_string(),
            started_at: claimed.started_at,
            finished_at,
            outcome: outcome_of(&next),
            http_status: Some(match next {
                NextState::Delivered { .. } => 200,
                NextState::Retry { .. } => 503,
                NextState::Dead { .. } => 400,
                NextState::Awaiting { .. } => 200,
            }),
            remote_code: None,
            detail,
            remote_id: None,
        },
        next,
    };
    store
        .complete_attempt(&completion)
        .await
        .expect("complete the attempt");
}

fn delivered(remote_id: &str) -> NextState {
    NextState::Delivered {
        remote_id: Some(remote_id.to_string()),
        url: Some(format!("https://example.gov.cn/{remote_id}")),
    }
}

fn retry_at(at: DateTime<Utc>) -> NextState {
    NextState::Retry {
        at,
        error: "HTTP 503 服务暂不可用".to_string(),
    }
}

fn dead() -> NextState {
    NextState::Dead {
        error: "HTTP 400 栏目不存在".to_string(),
    }
}

async fn status_of(store: &Arc<dyn Store>, id: i64) -> DeliveryStatus {
    store
        .get_delivery(DEPT, id)
        .await
        .expect("read delivery")
        .status
}

fn assert_conflict<T: std::fmt::Debug>(result: Result<T, StoreError>, needle: &str) {
    match result {
        Err(StoreError::Conflict(message)) => assert!(
            message.contains(needle),
            "conflict {message:?} should mention {needle:?}"
        ),
        other => panic!("expected a conflict mentioning {needle:?}, got {other:?}"),
    }
}

/// One disclosure's life: ingest, resubmit, correct, deliver, count, withdraw.
async fn story(store: Arc<dyn Store>) {
    // Revision 1 goes to two channels.
    let first = ingest(&store, revision("GK-1", 1, "v1"), &["site", "wall"], t(0)).await;
    assert_eq!(first.len(), 2);

    // Upstream sends it again: nothing new.
    let again = store
        .insert_disclosure(
            DEPT,
            &revision("GK-1", 1, "v1"),
            &to(&["site", "wall"]),
            t(1),
        )
        .await
        .unwrap();
    assert_eq!(
        again,
        IngestOutcome::Unchanged {
            delivery_ids: first.clone()
        }
    );
    // The same revision with other content is refused.
    assert_conflict(
        store
            .insert_disclosure(
                DEPT,
                &revision("GK-1", 1, "v1-edited"),
                &to(&["site"]),
                t(1),
            )
            .await,
        "第1版已存在",
    );

    // The worker claims both, in order.
    let claims = claim(&store, "worker-a", t(2)).await;
    assert_eq!(ids(&claims), first);
    for c in &claims {
        assert_eq!(c.attempt_number, 1);
        assert_eq!(c.trigger, AttemptTrigger::Scheduled);
        assert_eq!(c.disclosure.revision, 1);
        assert_eq!(c.delivery.status, DeliveryStatus::InFlight);
    }
    // The site accepts it; the wall is down.
    complete(&store, &claims[0], "worker-a", delivered("site-1"), t(3)).await;
    complete(&store, &claims[1], "worker-a", retry_at(t(100)), t(3)).await;

    // A correction arrives: revision 1 to the wall is never sent now.
    let second = ingest(&store, revision("GK-1", 2, "v2"), &["site", "wall"], t(10)).await;
    let wall_1 = store.get_delivery(DEPT, first[1]).await.unwrap();
    assert_eq!(wall_1.status, DeliveryStatus::Withdrawn);
    assert_eq!(wall_1.last_error.as_deref(), Some("已被第2版取代"));
    assert_eq!(wall_1.next_attempt_at, None);
    assert_eq!(status_of(&store, first[0]).await, DeliveryStatus::Delivered);

    // A late copy of revision 1 is refused.
    assert_conflict(
        store
            .insert_disclosure(DEPT, &revision("GK-1", 1, "v1-late"), &to(&["site"]), t(11))
            .await,
        "已有更高版本（第2版）",
    );

    // A retried copy of the very first submission is still answered as before.
    assert_eq!(
        store
            .insert_disclosure(
                DEPT,
                &revision("GK-1", 1, "v1"),
                &to(&["site", "wall"]),
                t(11)
            )
            .await
            .unwrap(),
        IngestOutcome::Unchanged {
            delivery_ids: first.clone()
        }
    );

    // Revision 2 goes out everywhere.
    let claims = claim(&store, "worker-a", t(20)).await;
    assert_eq!(ids(&claims), second);
    for c in &claims {
        assert_eq!(c.disclosure.revision, 2);
        assert_eq!(c.disclosure.json, revision("GK-1", 2, "v2").json);
        complete(&store, c, "worker-a", delivered("r2"), t(21)).await;
    }
    let site_2 = store.get_delivery(DEPT, second[0]).await.unwrap();
    assert_eq!(site_2.delivered_at, Some(t(21)));
    assert_eq!(site_2.remote_id.as_deref(), Some("r2"));
    assert_eq!(site_2.claimed_by, None);

    // The report counts each channel once, from its first delivery.
    let published = store.list_published(DEPT).await.unwrap();
    let counted: Vec<_> = published
        .iter()
        .map(|p| {
            (
                p.disclosure_id.as_str(),
                p.channel.as_str(),
                p.first_delivered_at,
            )
        })
        .collect();
    assert_eq!(
        counted,
        vec![("GK-1", "site", t(3)), ("GK-1", "wall", t(21))]
    );

    // The department withdraws it: both channels hold it, so both get a withdraw delivery.
    let outcome = store
        .withdraw_disclosure(DEPT, "GK-1", "cli:王科长", Some("信息有误"), t(30))
        .await
        .unwrap();
    let WithdrawOutcome::Withdrawn {
        cancelled,
        delivery_ids: withdrawals,
    } = outcome
    else {
        panic!("expected a fresh withdrawal, got {outcome:?}");
    };
    assert!(cancelled.is_empty());
    assert_eq!(withdrawals.len(), 2);
    let claims = claim(&store, "worker-a", t(31)).await;
    assert_eq!(ids(&claims), withdrawals);
    for c in &claims {
        assert_eq!(c.delivery.action, Action::Withdraw);
        assert_eq!(c.delivery.revision, 2);
        complete(&store, c, "worker-a", delivered("gone"), t(32)).await;
    }

    // Withdrawing again changes nothing; no revision is accepted any more.
    assert_eq!(
        store
            .withdraw_disclosure(DEPT, "GK-1", "cli:王科长", None, t(40))
            .await
            .unwrap(),
        WithdrawOutcome::AlreadyWithdrawn {
            delivery_ids: withdrawals.clone()
        }
    );
    assert_conflict(
        store
            .insert_disclosure(DEPT, &revision("GK-1", 3, "v3"), &to(&["site"]), t(41))
            .await,
        "该公开件已撤回",
    );
    let latest = store.get_disclosure(DEPT, "GK-1", None).await.unwrap();
    assert_eq!(latest.revision, 2);
    assert_eq!(latest.withdrawn_at, Some(t(30)));
    assert_eq!(latest.withdrawn_by.as_deref(), Some("cli:王科长"));
    assert_eq!(latest.withdraw_reason.as_deref(), Some("信息有误"));
    let original = store.get_disclosure(DEPT, "GK-1", Some(1)).await.unwrap();
    assert_eq!(original.content_hash, "hash-of-v1");
    assert_eq!(original.withdrawn_at, Some(t(30)));

    // History: the wall's revision-1 delivery keeps its failed attempt.
    let attempts = store.list_attempts(DEPT, first[1]).await.unwrap();
    assert_eq!(attempts.len(), 1);
    assert_eq!(attempts[0].outcome, AttemptOutcome::Transient);
    assert_eq!(attempts[0].http_status, Some(503));
    assert_eq!(store.next_due_at().await.unwrap(), None);
}

async fn the_story_of_one_disclosure_holds(db: Db) {
    let store = db.connect().await;
    story(store).await;
}

async fn resubmitting_a_revision_is_unchanged_and_different_content_is_a_conflict(db: Db) {
    let store = db.connect().await;
    let ids = ingest(&store, revision("GK-1", 1, "v1"), &["site"], t(0)).await;

    // Resubmitting with other channels still creates nothing.
    let again = store
        .insert_disclosure(
            DEPT,
            &revision("GK-1", 1, "v1"),
            &to(&["site", "wall"]),
            t(5),
        )
        .await
        .unwrap();
    assert_eq!(
        again,
        IngestOutcome::Unchanged {
            delivery_ids: ids.clone()
        }
    );
    assert_conflict(
        store
            .insert_disclosure(DEPT, &revision("GK-1", 1, "other"), &to(&["site"]), t(5))
            .await,
        "内容不同",
    );
    let all = store
        .list_deliveries(DEPT, &DeliveryFilter::default())
        .await
        .unwrap();
    assert_eq!(all.len(), 1);
    assert!(matches!(
        store.get_disclosure(DEPT, "GK-2", None).await,
        Err(StoreError::NotFound(_))
    ));
}

async fn a_higher_revision_supersedes_unfinished_publish_deliveries_of_older_ones(db: Db) {
    let store = db.connect().await;
    // Arrange: revision 1 pending on "a", retrying on "b", dead on "c", delivered on "d".
    let r1 = ingest(
        &store,
        revision("GK-1", 1, "v1"),
        &["a", "b", "c", "d"],
        t(0),
    )
    .await;
    let claims = claim(&store, "w", t(1)).await;
    complete(&store, &claims[1], "w", retry_at(t(500)), t(2)).await;
    complete(&store, &claims[2], "w", dead(), t(2)).await;
    complete(&store, &claims[3], "w", delivered("d-1"), t(2)).await;
    store
        .release_claim(r1[0], &claims[0].claim_token)
        .await
        .unwrap();
    assert_eq!(status_of(&store, r1[0]).await, DeliveryStatus::Pending);

    // Act
    let r2 = ingest(
        &store,
        revision("GK-1", 2, "v2"),
        &["a", "b", "c", "d"],
        t(10),
    )
    .await;

    // Assert
    for (id, expected) in [
        (r1[0], DeliveryStatus::Withdrawn),
        (r1[1], DeliveryStatus::Withdrawn),
        (r1[2], DeliveryStatus::Withdrawn),
        (r1[3], DeliveryStatus::Delivered),
    ] {
        let row = store.get_delivery(DEPT, id).await.unwrap();
        assert_eq!(row.status, expected, "delivery {id} to {}", row.channel);
        if expected == DeliveryStatus::Withdrawn {
            assert_eq!(row.last_error.as_deref(), Some("已被第2版取代"));
        }
    }
    assert_eq!(ids(&claim(&store, "w", t(11)).await), r2);
}

async fn a_revision_lower_than_the_highest_stored_is_refused(db: Db) {
    let store = db.connect().await;
    ingest(&store, revision("GK-1", 3, "v3"), &["site"], t(0)).await;

    assert_conflict(
        store
            .insert_disclosure(DEPT, &revision("GK-1", 2, "v2"), &to(&["site"]), t(1))
            .await,
        "已有更高版本（第3版）",
    );
    assert_eq!(
        store
            .get_disclosure(DEPT, "GK-1", None)
            .await
            .unwrap()
            .revision,
        3
    );
    assert!(matches!(
        store.get_disclosure(DEPT, "GK-1", Some(2)).await,
        Err(StoreError::NotFound(_))
    ));
}

async fn claims_take_the_oldest_due_first_and_leave_the_rest(db: Db) {
    let store = db.connect().await;
    let a = ingest(&store, revision("GK-A", 1, "a"), &["site"], t(0)).await[0];
    let b = ingest(&store, revision("GK-B", 1, "b"), &["site"], t(1)).await[0];
    let c = ingest(&store, revision("GK-C", 1, "c"), &["site"], t(2)).await[0];

    // The limit is respected, oldest first.
    let first = store.claim_due("w", t(3), LEASE, 2).await.unwrap();
    assert_eq!(ids(&first), vec![a, b]);
    complete(&store, &first[0], "w", retry_at(t(100)), t(4)).await;
    complete(&store, &first[1], "w", retry_at(t(50)), t(4)).await;

    // At t(60): c (due since t(2)) before b (due t(50)); a is not due until t(100).
    assert_eq!(ids(&claim(&store, "w", t(60)).await), vec![c, b]);
    assert_eq!(ids(&claim(&store, "w", t(99)).await), Vec::<i64>::new());
    assert_eq!(store.next_due_at().await.unwrap(), Some(t(100)));
    assert_eq!(ids(&claim(&store, "w", t(100)).await), vec![a]);
    assert_eq!(
        store.get_delivery(DEPT, a).await.unwrap().attempts,
        2,
        "the retry counts as the second attempt"
    );
}

async fn a_delivery_waits_while_an_older_one_for_the_same_channel_is_unfinished(db: Db) {
    let store = db.connect().await;
    let r1 = ingest(&store, revision("GK-1", 1, "v1"), &["site"], t(0)).await;
    let in_flight = claim(&store, "w", t(1)).await;
    assert_eq!(ids(&in_flight), r1);

    // Revision 2 arrives while revision 1 is being sent to "site".
    let r2 = ingest(&store, revision("GK-1", 2, "v2"), &["site", "wall"], t(2)).await;

    // Only the wall may go now; the site must first finish revision 1.
    assert_eq!(ids(&claim(&store, "w", t(3)).await), vec![r2[1]]);
    assert_eq!(
        store.next_due_at().await.unwrap(),
        Some(t(1) + chrono::Duration::from_std(LEASE).unwrap()),
        "the blocked delivery is not due; the lease of its older sibling is"
    );
    complete(&store, &in_flight[0], "w", delivered("r1"), t(4)).await;
    assert_eq!(ids(&claim(&store, "w", t(5)).await), vec![r2[0]]);
}

async fn an_expired_lease_is_taken_over_and_the_lost_attempt_is_written_down(db: Db) {
    let store = db.connect().await;
    let id = ingest(&store, revision("GK-1", 1, "v1"), &["site"], t(0)).await[0];
    let by_a = claim(&store, "instance-a", t(1)).await;
    assert_eq!(by_a[0].delivery.claimed_until, Some(t(61)));

    // Within the lease nobody else gets it.
    assert!(claim(&store, "instance-b", t(60)).await.is_empty());

    // Act: the lease has run out (instance-a crashed).
    let by_b = claim(&store, "instance-b", t(61)).await;

    // Assert
    assert_eq!(ids(&by_b), vec![id]);
    assert_eq!(by_b[0].attempt_number, 2);
    assert_eq!(by_b[0].delivery.claimed_by.as_deref(), Some("instance-b"));
    assert_ne!(by_b[0].claim_token, by_a[0].claim_token);
    let attempts = store.list_attempts(DEPT, id).await.unwrap();
    assert_eq!(attempts.len(), 1);
    let lost = &attempts[0];
    assert_eq!(lost.outcome, AttemptOutcome::Lost);
    assert_eq!(lost.number, 1);
    assert_eq!(lost.instance.as_deref(), Some("instance-a"));
    assert_eq!((lost.started_at, lost.finished_at), (t(1), t(61)));
    assert_eq!(lost.duration_ms, 60_000);
    let detail = lost.detail.as_deref().unwrap_or_default();
    assert!(
        detail.contains("实例 instance-a 在租约到期前未报告结果"),
        "{detail}"
    );

    complete(&store, &by_b[0], "instance-b", delivered("x"), t(62)).await;
    let row = store.get_delivery(DEPT, id).await.unwrap();
    assert_eq!(row.status, DeliveryStatus::Delivered);
    assert_eq!(row.attempts, 2);
    assert_eq!(row.last_error, None);
}

async fn a_completion_with_a_stale_claim_token_is_recorded_but_changes_nothing(db: Db) {
    let store = db.connect().await;
    let id = ingest(&store, revision("GK-1", 1, "v1"), &["site"], t(0)).await[0];
    let by_a = claim(&store, "instance-a", t(1)).await;
    let by_b = claim(&store, "instance-b", t(70)).await;

    // instance-a was only slow: it reports after instance-b took over.
    complete(&store, &by_a[0], "instance-a", dead(), t(71)).await;

    let row = store.get_delivery(DEPT, id).await.unwrap();
    assert_eq!(row.status, DeliveryStatus::InFlight);
    assert_eq!(row.claimed_by.as_deref(), Some("instance-b"));
    // Both reports of attempt 1 are kept, in the order they were written.
    let attempts = store.list_attempts(DEPT, id).await.unwrap();
    let seen: Vec<_> = attempts
        .iter()
        .map(|a| (a.number, a.outcome, a.instance.as_deref()))
        .collect();
    assert_eq!(
        seen,
        vec![
            (1, AttemptOutcome::Lost, Some("instance-a")),
            (1, AttemptOutcome::Permanent, Some("instance-a")),
        ]
    );

    // The current claim still completes.
    complete(&store, &by_b[0], "instance-b", delivered("x"), t(72)).await;
    assert_eq!(status_of(&store, id).await, DeliveryStatus::Delivered);
    assert_eq!(store.list_attempts(DEPT, id).await.unwrap().len(), 3);
    // A second report with the used token changes nothing either.
    complete(&store, &by_b[0], "instance-b", dead(), t(73)).await;
    assert_eq!(status_of(&store, id).await, DeliveryStatus::Delivered);
}

async fn an_operator_retry_is_manual_on_the_next_claim_and_keeps_the_history(db: Db) {
    let store = db.connect().await;
    let id = ingest(&store, revision("GK-1", 1, "v1"), &["site"], t(0)).await[0];
    let first = claim(&store, "w", t(1)).await;
    complete(&store, &first[0], "w", dead(), t(2)).await;
    assert_eq!(status_of(&store, id).await, DeliveryStatus::Dead);

    // Act
    let result = store
        .retry_now(DEPT, &[id], "cli:张三", t(10))
        .await
        .unwrap();

    // Assert
    assert_eq!(result, vec![RetryResult::Scheduled { id }]);
    let row = store.get_delivery(DEPT, id).await.unwrap();
    assert_eq!(row.status, DeliveryStatus::Pending);
    assert_eq!(row.next_attempt_at, Some(t(10)));
    assert_eq!(row.next_trigger, AttemptTrigger::Manual);
    assert_eq!(row.requested_by.as_deref(), Some("cli:张三"));
    assert_eq!((row.attempts, row.attempts_base), (1, 1));

    let second = claim(&store, "w", t(11)).await;
    assert_eq!(second[0].trigger, AttemptTrigger::Manual);
    assert_eq!(second[0].requested_by.as_deref(), Some("cli:张三"));
    assert_eq!(second[0].attempt_number, 2);
    let row = store.get_delivery(DEPT, id).await.unwrap();
    assert_eq!(row.next_trigger, AttemptTrigger::Scheduled);
    assert_eq!(row.requested_by, None);

    complete(&store, &second[0], "w", delivered("x"), t(12)).await;
    let attempts = store.list_attempts(DEPT, id).await.unwrap();
    let seen: Vec<_> = attempts
        .iter()
        .map(|a| (a.number, a.trigger, a.requested_by.as_deref(), a.outcome))
        .collect();
    assert_eq!(
        seen,
        vec![
            (
                1,
                AttemptTrigger::Scheduled,
                None,
                AttemptOutcome::Permanent
            ),
            (
                2,
                AttemptTrigger::Manual,
                Some("cli:张三"),
                AttemptOutcome::Delivered
            ),
        ]
    );
}

async fn an_operator_retry_is_refused_for_delivered_withdrawn_in_flight_and_unknown_deliveries(
    db: Db,
) {
    let store = db.connect().await;
    // One delivery in each status.
    let ids = ingest(
        &store,
        revision("GK-1", 1, "v1"),
        &["delivered", "retrying", "dead", "in_flight", "pending"],
        t(0),
    )
    .await;
    let claims = claim(&store, "w", t(1)).await;
    complete(&store, &claims[0], "w", delivered("x"), t(2)).await;
    complete(&store, &claims[1], "w", retry_at(t(900)), t(2)).await;
    complete(&store, &claims[2], "w", dead(), t(2)).await;
    store
        .release_claim(ids[4], &claims[4].claim_token)
        .await
        .unwrap();
    let withdrawn = ingest(&store, revision("GK-2", 1, "v"), &["site"], t(3)).await[0];
    store
        .withdraw_disclosure(DEPT, "GK-2", "cli:op", None, t(4))
        .await
        .unwrap();
    assert_eq!(
        status_of(&store, withdrawn).await,
        DeliveryStatus::Withdrawn
    );

    let table = [
        (ids[0], Some("已送达，无需重试")),
        (ids[1], None),
        (ids[2], None),
        (ids[3], Some("正在投递中")),
        (ids[4], None),
        (withdrawn, Some("已撤回")),
        (9999, Some("没有这个投递")),
    ];
    let asked: Vec<i64> = table.iter().map(|(id, _)| *id).collect();
    let results = store.retry_now(DEPT, &asked, "cli:op", t(5)).await.unwrap();
    for ((id, refusal), result) in table.iter().zip(&results) {
        let expected = match refusal {
            None => RetryResult::Scheduled { id: *id },
            Some(reason) => RetryResult::Refused {
                id: *id,
                reason: reason.to_string(),
            },
        };
        assert_eq!(result, &expected);
    }
    assert_eq!(status_of(&store, ids[0]).await, DeliveryStatus::Delivered);
    assert_eq!(status_of(&store, ids[3]).await, DeliveryStatus::InFlight);
}

async fn withdrawing_cancels_unsent_publish_deliveries_and_withdraws_where_the_item_may_be(db: Db) {
    let store = db.connect().await;
    // Arrange: delivered to "a", failed once to "b", never tried on "c", being sent to "d".
    let p = ingest(
        &store,
        revision("GK-1", 1, "v1"),
        &["a", "b", "c", "d"],
        t(0),
    )
    .await;
    let claims = claim(&store, "w", t(1)).await;
    complete(&store, &claims[0], "w", delivered("a-1"), t(2)).await;
    complete(&store, &claims[1], "w", retry_at(t(900)), t(2)).await;
    store
        .release_claim(p[2], &claims[2].claim_token)
        .await
        .unwrap();
    let sending_to_d = &claims[3];

    // Act
    let outcome = store
        .withdraw_disclosure(DEPT, "GK-1", "cli:op", Some("撤回原因"), t(10))
        .await
        .unwrap();

    // Assert: b and c are cancelled; a, b (maybe received) and d (in flight) get withdrawals.
    let WithdrawOutcome::Withdrawn {
        cancelled,
        delivery_ids,
    } = outcome
    else {
        panic!("expected a fresh withdrawal, got {outcome:?}");
    };
    assert_eq!(cancelled, vec![p[1], p[2]]);
    let withdrawals = store
        .list_deliveries(
            DEPT,
            &DeliveryFilter {
                disclosure_id: Some("GK-1".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .into_iter()
        .filter(|d| d.action == Action::Withdraw)
        .map(|d| (d.id, d.channel))
        .collect::<Vec<_>>();
    assert_eq!(
        withdrawals,
        vec![
            (delivery_ids[0], "a".to_string()),
            (delivery_ids[1], "b".to_string()),
            (delivery_ids[2], "d".to_string()),
        ]
    );
    assert_eq!(status_of(&store, p[3]).await, DeliveryStatus::InFlight);

    // The withdrawal to d waits for the publish in flight, which then fails: it is not
    // retried, because the item is withdrawn.
    assert_eq!(
        ids(&claim(&store, "w", t(11)).await),
        vec![delivery_ids[0], delivery_ids[1]]
    );
    complete(&store, sending_to_d, "w", retry_at(t(20)), t(12)).await;
    let d = store.get_delivery(DEPT, p[3]).await.unwrap();
    assert_eq!(d.status, DeliveryStatus::Withdrawn);
    assert_eq!(d.last_error.as_deref(), Some("该公开件已撤回"));
    assert_eq!(ids(&claim(&store, "w", t(13)).await), vec![delivery_ids[2]]);

    assert!(matches!(
        store
            .withdraw_disclosure(DEPT, "GK-404", "cli:op", None, t(14))
            .await,
        Err(StoreError::NotFound(_))
    ));
}

async fn a_failed_attempt_of_a_superseded_revision_is_withdrawn_instead_of_retried(db: Db) {
    let store = db.connect().await;
    let r1 = ingest(&store, revision("GK-1", 1, "v1"), &["site"], t(0)).await;
    let in_flight = claim(&store, "w", t(1)).await;
    let r2 = ingest(&store, revision("GK-1", 2, "v2"), &["site"], t(2)).await;

    complete(&store, &in_flight[0], "w", retry_at(t(30)), t(3)).await;

    let row = store.get_delivery(DEPT, r1[0]).await.unwrap();
    assert_eq!(row.status, DeliveryStatus::Withdrawn);
    assert_eq!(row.last_error.as_deref(), Some("已被第2版取代"));
    assert_eq!(row.next_attempt_at, None);
    assert_eq!(ids(&claim(&store, "w", t(4)).await), r2);
}

async fn the_published_list_has_one_row_per_item_and_channel_with_its_first_dates(db: Db) {
    let store = db.connect().await;
    // Revision 1 has no publish date yet; revision 2 gives one, revision 3 changes it.
    let mut v1 = revision("GK-1", 1, "v1");
    v1.publish_date = None;
    let mut v2 = revision("GK-1", 2, "v2");
    v2.publish_date = Some(date(2025, 3, 2));
    let mut v3 = revision("GK-1", 3, "v3");
    v3.publish_date = Some(date(2025, 3, 9));
    v3.category = "规划信息".to_string();

    ingest(&store, v1, &["site", "wall"], t(0)).await;
    let claims = claim(&store, "w", t(1)).await;
    complete(&store, &claims[0], "w", delivered("s"), t(5)).await;
    complete(&store, &claims[1], "w", dead(), t(5)).await;
    ingest(&store, v2, &["site", "wall"], t(10)).await;
    for c in claim(&store, "w", t(11)).await {
        complete(&store, &c, "w", delivered("s"), t(15)).await;
    }
    ingest(&store, v3, &["site", "wall"], t(20)).await;
    for c in claim(&store, "w", t(21)).await {
        complete(&store, &c, "w", delivered("s"), t(25)).await;
    }
    // Withdrawn after delivery: still counted once, the withdrawal itself is not.
    ingest(&store, revision("GK-3", 1, "y"), &["site"], t(40)).await;
    for c in claim(&store, "w", t(41)).await {
        complete(&store, &c, "w", delivered("y"), t(42)).await;
    }
    store
        .withdraw_disclosure(DEPT, "GK-3", "cli:op", None, t(43))
        .await
        .unwrap();
    for c in claim(&store, "w", t(44)).await {
        complete(&store, &c, "w", delivered("y"), t(45)).await;
    }

    // Never delivered anywhere: not counted.
    ingest(&store, revision("GK-2", 1, "x"), &["site"], t(50)).await;

    let rows: Vec<_> = store
        .list_published(DEPT)
        .await
        .unwrap()
        .into_iter()
        .map(|p| {
            (
                p.disclosure_id,
                p.channel,
                p.category,
                p.publish_date,
                p.first_delivered_at,
            )
        })
        .collect();
    let row = |id: &str, channel: &str, category: &str, day, at| {
        (
            id.to_string(),
            channel.to_string(),
            category.to_string(),
            Some(date(2025, 3, day)),
            at,
        )
    };
    assert_eq!(
        rows,
        vec![
            row("GK-1", "site", "规划信息", 2, t(5)),
            row("GK-1", "wall", "规划信息", 2, t(15)),
            row("GK-3", "site", "通知公告", 1, t(42)),
        ]
    );

    // The report's groups (the summary kept on delivery and on ingest) say the same: the
    // latest category, the first publish date's year, each item once on its first channel.
    let groups: Vec<_> = store
        .published_groups(DEPT)
        .await
        .unwrap()
        .into_iter()
        .map(|g| (g.channel, g.category, g.count_year, g.primary, g.items))
        .collect();
    let g = |ch: &str, cat: &str, primary| (ch.to_string(), cat.to_string(), 2025, primary, 1);
    assert_eq!(
        groups,
        vec![
            g("site", "规划信息", true),
            g("site", "通知公告", true),
            g("wall", "规划信息", false),
        ]
    );
}

async fn a_released_claim_is_due_again_without_counting_an_attempt(db: Db) {
    let store = db.connect().await;
    let id = ingest(&store, revision("GK-1", 1, "v1"), &["site"], t(0)).await[0];
    let first = claim(&store, "w", t(1)).await;
    complete(&store, &first[0], "w", dead(), t(2)).await;
    store.retry_now(DEPT, &[id], "cli:op", t(3)).await.unwrap();
    let manual = claim(&store, "w", t(4)).await;

    // Shutting down before the send.
    store
        .release_claim(id, &manual[0].claim_token)
        .await
        .unwrap();

    let row = store.get_delivery(DEPT, id).await.unwrap();
    assert_eq!(row.status, DeliveryStatus::Pending);
    assert_eq!(row.attempts, 1);
    assert_eq!(row.claimed_by, None);
    assert_eq!(
        row.next_trigger,
        AttemptTrigger::Manual,
        "still the operator's"
    );
    assert_eq!(store.next_due_at().await.unwrap(), Some(t(4)));
    let again = claim(&store, "w", t(5)).await;
    assert_eq!(again[0].attempt_number, 2);
    assert_eq!(again[0].requested_by.as_deref(), Some("cli:op"));
    // The old token no longer holds anything.
    assert!(matches!(
        store.release_claim(id, &manual[0].claim_token).await,
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        store.release_claim(9999, "nope").await,
        Err(StoreError::NotFound(_))
    ));
}

async fn the_payload_is_fixed_once_under_the_current_claim(db: Db) {
    let store = db.connect().await;
    let id = ingest(&store, revision("GK-1", 1, "v1"), &["site"], t(0)).await[0];
    let c = claim(&store, "w", t(1)).await.remove(0);
    assert_eq!(c.delivery.payload, None);

    assert!(matches!(
        store.store_payload(id, "not-the-token", b"x", "00").await,
        Err(StoreError::Conflict(_))
    ));
    store
        .store_payload(id, &c.claim_token, b"{\"title\":\"t\"}", "abc123")
        .await
        .unwrap();
    assert!(matches!(
        store
            .store_payload(id, &c.claim_token, b"other", "def")
            .await,
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        store.store_payload(9999, "t", b"x", "00").await,
        Err(StoreError::NotFound(_))
    ));

    // A later claim sees the fixed bytes.
    complete(&store, &c, "w", retry_at(t(10)), t(2)).await;
    let again = claim(&store, "w", t(10)).await.remove(0);
    assert_eq!(
        again.delivery.payload.as_deref(),
        Some(&b"{\"title\":\"t\"}"[..])
    );
    assert_eq!(again.delivery.payload_sha256.as_deref(), Some("abc123"));
}

/// Payloads and completions made at the same moment (the worker's concurrent attempts,
/// which the stores commit in groups): each gets its own answer, a bad one (wrong claim,
/// unknown delivery) does not spoil the others, and the rules hold as one by one.
async fn payloads_and_completions_made_together_each_get_their_own_answer(db: Db) {
    let store = db.connect().await;
    let mut all = Vec::new();
    for i in 0..8 {
        all.extend(
            ingest(
                &store,
                revision(&format!("GK-{i}"), 1, "v1"),
                &["site"],
                t(0),
            )
            .await,
        );
    }
    let claims = claim(&store, "w", t(1)).await;
    assert_eq!(claims.len(), 8);

    // Payloads: six under their claims, one with a wrong token, one for no delivery.
    let payloads = futures::future::join_all(
        claims[..6]
            .iter()
            .map(|c| (c.delivery.id, c.claim_token.clone()))
            .chain([
                (claims[6].delivery.id, "not-the-token".to_string()),
                (999_999, "t".into()),
            ])
            .map(|(id, token)| {
                let store = store.clone();
                async move {
                    store
                        .store_payload(id, &token, format!("payload {id}").as_bytes(), "sha")
                        .await
                }
            }),
    )
    .await;
    assert!(payloads[..6].iter().all(|r| r.is_ok()), "{payloads:?}");
    assert!(matches!(payloads[6], Err(StoreError::Conflict(_))));
    assert!(matches!(payloads[7], Err(StoreError::NotFound(_))));

    // Completions: five delivered, one delivered with a stale token (recorded, changes
    // nothing), one for no delivery (NotFound), one retry.
    let completion = |c: &Claimed, token: &str, next: NextState| Completion {
        delivery_id: c.delivery.id,
        claim_token: token.to_string(),
        attempt: NewAttempt {
            number: c.attempt_number,
            trigger: c.trigger,
            requested_by: None,
            instance: "w".into(),
            started_at: c.started_at,
            finished_at: t(2),
            outcome: outcome_of(&next),
            http_status: Some(200),
            remote_code: None,
            detail: None,
            remote_id: None,
        },
        next,
    };
    let mut completions: Vec<Completion> = claims[..5]
        .iter()
        .map(|c| completion(c, &c.claim_token, delivered(&format!("r{}", c.delivery.id))))
        .collect();
    completions.push(completion(&claims[5], "stale", delivered("stale")));
    let mut unknown = completion(&claims[5], "t", delivered("none"));
    unknown.delivery_id = 999_999;
    completions.push(unknown);
    completions.push(completion(
        &claims[7],
        &claims[7].claim_token,
        retry_at(t(30)),
    ));
    let results = futures::future::join_all(completions.iter().map(|c| {
        let store = store.clone();
        async move { store.complete_attempt(c).await }
    }))
    .await;
    assert!(results[..6].iter().all(|r| r.is_ok()), "{results:?}");
    assert!(
        matches!(results[6], Err(StoreError::NotFound(_))),
        "{results:?}"
    );
    assert!(results[7].is_ok());

    for c in &claims[..5] {
        let row = store.get_delivery(DEPT, c.delivery.id).await.unwrap();
        assert_eq!(row.status, DeliveryStatus::Delivered);
        assert_eq!(row.remote_id, Some(format!("r{}", c.delivery.id)));
        assert_eq!(
            row.payload,
            Some(format!("payload {}", c.delivery.id).into_bytes())
        );
        assert_eq!(row.claimed_by, None);
        assert_eq!(
            store
                .list_attempts(DEPT, c.delivery.id)
                .await
                .unwrap()
                .len(),
            1
        );
    }
    let stale = store
        .get_delivery(DEPT, claims[5].delivery.id)
        .await
        .unwrap();
    assert_eq!(
        stale.status,
        DeliveryStatus::InFlight,
        "a stale token changes nothing"
    );
    assert_eq!(
        store.list_attempts(DEPT, stale.id).await.unwrap().len(),
        1,
        "but is recorded"
    );
    assert_eq!(
        store
            .get_delivery(DEPT, claims[6].delivery.id)
            .await
            .unwrap()
            .payload,
        None
    );
    assert_eq!(
        status_of(&store, claims[7].delivery.id).await,
        DeliveryStatus::Retrying
    );
}

async fn deliveries_are_listed_by_id_with_the_filter_applied(db: Db) {
    let store = db.connect().await;
    let a = ingest(&store, revision("GK-1", 1, "a"), &["site", "wall"], t(0)).await;
    let b = ingest(&store, revision("GK-2", 1, "b"), &["site", "wall"], t(1)).await;
    let claims = claim(&store, "w", t(2)).await;
    complete(&store, &claims[0], "w", dead(), t(3)).await;
    complete(&store, &claims[3], "w", dead(), t(3)).await;

    let list = |filter: DeliveryFilter| {
        let store = store.clone();
        async move {
            store
                .list_deliveries(DEPT, &filter)
                .await
                .unwrap()
                .into_iter()
                .map(|d| d.id)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        list(DeliveryFilter::default()).await,
        vec![a[0], a[1], b[0], b[1]]
    );
    assert_eq!(
        list(DeliveryFilter {
            statuses: vec![DeliveryStatus::Dead],
            ..Default::default()
        })
        .await,
        vec![a[0], b[1]]
    );
    assert_eq!(
        list(DeliveryFilter {
            statuses: vec![DeliveryStatus::Dead, DeliveryStatus::InFlight],
            channel: Some("wall".into()),
            ..Default::default()
        })
        .await,
        vec![a[1], b[1]]
    );
    assert_eq!(
        list(DeliveryFilter {
            disclosure_id: Some("GK-2".into()),
            limit: Some(1),
            ..Default::default()
        })
        .await,
        vec![b[0]]
    );
    assert!(matches!(
        store.get_delivery(DEPT, 9999).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        store.list_attempts(DEPT, 9999).await,
        Err(StoreError::NotFound(_))
    ));
}

async fn two_processes_on_one_database_deliver_each_delivery_exactly_once(db: Db) {
    // Two stores on the same database stand in for two processes (daemon and CLI, or two
    // daemons): each has its own connections, so they really contend for the rows.
    let first = db.connect().await;
    let second = db.connect().await;
    let channels: Vec<String> = (0..20).map(|i| format!("ch{i}")).collect();
    let channels: Vec<&str> = channels.iter().map(String::as_str).collect();
    for n in 0..10 {
        ingest(
            &first,
            revision(&format!("GK-{n}"), 1, "v"),
            &channels,
            t(0),
        )
        .await;
    }

    let work = |store: Arc<dyn Store>, instance: &'static str| {
        tokio::spawn(async move {
            let mut done = 0;
            loop {
                let claims = store.claim_due(instance, t(1), LEASE, 7).await.unwrap();
                if claims.is_empty() {
                    return done;
                }
                for c in &claims {
                    complete(&store, c, instance, delivered("x"), t(2)).await;
                    done += 1;
                }
            }
        })
    };
    let (a, b) = tokio::join!(work(first.clone(), "a"), work(second.clone(), "b"));
    assert_eq!(a.unwrap() + b.unwrap(), 200);

    let all = second
        .list_deliveries(DEPT, &DeliveryFilter::default())
        .await
        .unwrap();
    assert_eq!(all.len(), 200);
    for d in all {
        assert_eq!(d.status, DeliveryStatus::Delivered);
        assert_eq!(d.attempts, 1);
        assert_eq!(first.list_attempts(DEPT, d.id).await.unwrap().len(), 1);
    }
}

/// Not a correctness test: run with
/// `cargo test --release --test store -- --ignored --nocapture` to see the rate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "timing; run in release to measure"]
async fn claiming_and_completing_keeps_up_with_thousands_of_deliveries_a_second() {
    let db = Db::sqlite();
    let store = db.connect().await;
    let channels: Vec<String> = (0..10).map(|i| format!("ch{i}")).collect();
    let channels: Vec<&str> = channels.iter().map(String::as_str).collect();
    for n in 0..2000 {
        ingest(
            &store,
            revision(&format!("GK-{n}"), 1, "v"),
            &channels,
            t(0),
        )
        .await;
    }
    let started = std::time::Instant::now();
    let mut claiming = Duration::ZERO;
    let mut done = 0;
    loop {
        let before = std::time::Instant::now();
        let claims = store.claim_due("w", t(1), LEASE, 64).await.unwrap();
        claiming += before.elapsed();
        if claims.is_empty() {
            break;
        }
        for c in &claims {
            complete(&store, c, "w", delivered("x"), t(2)).await;
            done += 1;
        }
    }
    let elapsed = started.elapsed();
    let rate = done as f64 / elapsed.as_secs_f64();
    println!(
        "{done} deliveries claimed and completed at {rate:.0}/s \
         ({claiming:?} of {elapsed:?} claiming)"
    );
    assert_eq!(done, 20_000);
}

/// Two instances, each with several claimers at once, race for the same queue: every
/// delivery is claimed once and delivered once, and nothing is left behind.
async fn two_instances_racing_with_concurrent_claimers_deliver_each_exactly_once(db: Db) {
    let first = db.connect().await;
    let second = db.connect().await;
    let channels: Vec<String> = (0..10).map(|i| format!("ch{i}")).collect();
    let channels: Vec<&str> = channels.iter().map(String::as_str).collect();
    for n in 0..40 {
        ingest(
            &first,
            revision(&format!("GK-{n}"), 1, "v"),
            &channels,
            t(0),
        )
        .await;
    }
    let mut workers = tokio::task::JoinSet::new();
    for (store, instance) in [(&first, "a"), (&second, "b")] {
        for k in 0..4 {
            let store = Arc::clone(store);
            let instance = format!("{instance}{k}");
            workers.spawn(async move {
                let mut mine = Vec::new();
                loop {
                    let claims = store.claim_due(&instance, t(1), LEASE, 5).await.unwrap();
                    if claims.is_empty() {
                        return mine;
                    }
                    for c in &claims {
                        complete(&store, c, &instance, delivered("x"), t(2)).await;
                        mine.push(c.delivery.id);
                    }
                }
            });
        }
    }
    let mut all_claimed = Vec::new();
    while let Some(mine) = workers.join_next().await {
        all_claimed.extend(mine.unwrap());
    }
    all_claimed.sort_unstable();
    let before = all_claimed.len();
    all_claimed.dedup();
    assert_eq!(before, all_claimed.len(), "a delivery was claimed twice");
    assert_eq!(all_claimed.len(), 400);
    for d in second
        .list_deliveries(DEPT, &DeliveryFilter::default())
        .await
        .unwrap()
    {
        assert_eq!(d.status, DeliveryStatus::Delivered, "delivery {}", d.id);
        assert_eq!(d.attempts, 1, "delivery {}", d.id);
        assert_eq!(first.list_attempts(DEPT, d.id).await.unwrap().len(), 1);
    }
}

/// An instance that died mid-attempt: once its lease runs out, exactly one of two live
/// instances takes each delivery over (with the `lost` attempt), never both.
async fn expired_leases_are_taken_over_by_exactly_one_instance(db: Db) {
    let first = db.connect().await;
    let second = db.connect().await;
    let mut created = Vec::new();
    for n in 0..30 {
        created.extend(
            ingest(
                &first,
                revision(&format!("GK-{n}"), 1, "v"),
                &["site"],
                t(0),
            )
            .await,
        );
    }
    // "dead" claims everything and never reports.
    assert_eq!(claim(&first, "dead", t(1)).await.len(), 30);
    let after_lease =
        t(1) + chrono::Duration::from_std(LEASE).unwrap() + chrono::Duration::seconds(1);
    let (a, b) = tokio::join!(
        first.claim_due("a", after_lease, LEASE, 100),
        second.claim_due("b", after_lease, LEASE, 100)
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    let mut taken: Vec<i64> = ids(&a).into_iter().chain(ids(&b)).collect();
    taken.sort_unstable();
    assert_eq!(
        taken, created,
        "each abandoned delivery is taken over exactly once"
    );
    for c in a.iter().chain(b.iter()) {
        assert_eq!(c.attempt_number, 2);
        let attempts = first.list_attempts(DEPT, c.delivery.id).await.unwrap();
        assert_eq!(attempts.len(), 1);
        assert_eq!(attempts[0].outcome, AttemptOutcome::Lost);
        assert_eq!(attempts[0].instance.as_deref(), Some("dead"));
    }
}

on_both_backends!(
    the_story_of_one_disclosure_holds,
    resubmitting_a_revision_is_unchanged_and_different_content_is_a_conflict,
    a_higher_revision_supersedes_unfinished_publish_deliveries_of_older_ones,
    a_revision_lower_than_the_highest_stored_is_refused,
    claims_take_the_oldest_due_first_and_leave_the_rest,
    a_delivery_waits_while_an_older_one_for_the_same_channel_is_unfinished,
    an_expired_lease_is_taken_over_and_the_lost_attempt_is_written_down,
    a_completion_with_a_stale_claim_token_is_recorded_but_changes_nothing,
    an_operator_retry_is_manual_on_the_next_claim_and_keeps_the_history,
    an_operator_retry_is_refused_for_delivered_withdrawn_in_flight_and_unknown_deliveries,
    withdrawing_cancels_unsent_publish_deliveries_and_withdraws_where_the_item_may_be,
    a_failed_attempt_of_a_superseded_revision_is_withdrawn_instead_of_retried,
    the_published_list_has_one_row_per_item_and_channel_with_its_first_dates,
    a_released_claim_is_due_again_without_counting_an_attempt,
    the_payload_is_fixed_once_under_the_current_claim,
    payloads_and_completions_made_together_each_get_their_own_answer,
    deliveries_are_listed_by_id_with_the_filter_applied,
    two_processes_on_one_database_deliver_each_delivery_exactly_once,
    two_instances_racing_with_concurrent_claimers_deliver_each_exactly_once,
    expired_leases_are_taken_over_by_exactly_one_instance,
    published_groups_count_each_item_once_on_its_primary_channel,
    a_wechat_message_is_answered_once_whichever_instance_wechat_retries,
    a_fresh_answer_is_stored_in_one_write_and_the_first_stored_answer_wins,
    a_mass_send_report_is_recorded_once_whichever_instance_gets_it,
    search_ranks_the_phrase_in_titles_first_then_newest_within_each_tier,
    search_finds_the_latest_published_revision_and_never_a_withdrawn_one,
    the_latest_published_are_by_publish_date_and_category,
    report_revisions_read_the_report_fields_of_the_stored_json,
    operator_accounts_sessions_and_the_day_list_hold,
    departments_share_one_ledger_but_never_see_each_others_items,
    one_queue_serves_every_department_and_the_sibling_rule_stays_within_one,
    reports_search_and_counts_are_per_department,
);

/// PostgreSQL only: an idle instance waiting for work wakes when another instance stores
/// new work (LISTEN/NOTIFY), long before its poll interval.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_idle_instances_wake_on_new_work_from_another_instance() {
    let Some(db) = Db::postgres().await else {
        return;
    };
    let waiter = db.connect().await;
    let other = db.connect().await;
    // The first wait starts the listener (and may return at once on its first wake-up).
    waiter.wait_for_work(Duration::from_millis(300)).await;
    waiter.wait_for_work(Duration::from_millis(300)).await;
    let started = std::time::Instant::now();
    let wait = {
        let waiter = Arc::clone(&waiter);
        tokio::spawn(async move { waiter.wait_for_work(Duration::from_secs(20)).await })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    ingest(&other, revision("GK-1", 1, "v"), &["site"], t(0)).await;
    wait.await.unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "woke after {:?}",
        started.elapsed()
    );
}

/// The report's grouped counts: one group per distinct (channel, category, year, formed
/// date, delivery day, primary), the primary channel counting each item once.
async fn published_groups_count_each_item_once_on_its_primary_channel(db: Db) {
    let store = db.connect().await;
    for n in 1..=2 {
        let channels: &[&str] = if n == 1 { &["a", "b"] } else { &["a"] };
        ingest(&store, revision(&format!("GK-{n}"), 1, "v"), channels, t(0)).await;
    }
    for c in claim(&store, "w", t(1)).await {
        complete(&store, &c, "w", delivered("x"), t(2)).await;
    }
    let groups = store.published_groups(DEPT).await.unwrap();
    let summary: Vec<_> = groups
        .iter()
        .map(|g| {
            (
                g.channel.as_str(),
                g.category.as_str(),
                g.count_year,
                g.formed_date,
                g.delivered_on,
                g.primary,
                g.items,
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (
                "a",
                "通知公告",
                2025,
                date(2025, 2, 28),
                date(2025, 3, 1),
                true,
                2
            ),
            (
                "b",
                "通知公告",
                2025,
                date(2025, 2, 28),
                date(2025, 3, 1),
                false,
                1
            ),
        ]
    );
}

async fn a_wechat_message_is_answered_once_whichever_instance_wechat_retries(db: Db) {
    let (a, b) = (db.connect().await, db.connect().await);
    let lease = Duration::from_secs(5);
    assert_eq!(
        a.claim_wechat_message("wx1", "m1", t(0), lease)
            .await
            .unwrap(),
        MessageClaim::New
    );
    // A retry while the first request works on it (another instance): in progress.
    assert_eq!(
        b.claim_wechat_message("wx1", "m1", t(1), lease)
            .await
            .unwrap(),
        MessageClaim::InProgress
    );
    a.answer_wechat_message("wx1", "m1", "<xml>答复</xml>", t(2))
        .await
        .unwrap();
    for store in [&a, &b] {
        assert_eq!(
            store
                .claim_wechat_message("wx1", "m1", t(3), lease)
                .await
                .unwrap(),
            MessageClaim::Answered("<xml>答复</xml>".to_string())
        );
    }
    // The same key of another account is another message.
    assert_eq!(
        b.claim_wechat_message("wx2", "m1", t(3), lease)
            .await
            .unwrap(),
        MessageClaim::New
    );
    // A claim left unanswered past the lease (its instance died) is taken over, once.
    assert_eq!(
        a.claim_wechat_message("wx1", "m2", t(10), lease)
            .await
            .unwrap(),
        MessageClaim::New
    );
    assert_eq!(
        b.claim_wechat_message("wx1", "m2", t(20), lease)
            .await
            .unwrap(),
        MessageClaim::New
    );
    assert_eq!(
        a.claim_wechat_message("wx1", "m2", t(21), lease)
            .await
            .unwrap(),
        MessageClaim::InProgress
    );
    b.answer_wechat_message("wx1", "m2", "success", t(22))
        .await
        .unwrap();
    assert_eq!(
        a.claim_wechat_message("wx1", "m2", t(23), lease)
            .await
            .unwrap(),
        MessageClaim::Answered("success".to_string())
    );
}

async fn a_fresh_answer_is_stored_in_one_write_and_the_first_stored_answer_wins(db: Db) {
    let (a, b) = (db.connect().await, db.connect().await);
    let lease = Duration::from_secs(5);
    // Two instances answered the same message (WeChat retried on the other one): the
    // first stored answer is the one both give, and what a later retry gets.
    assert_eq!(
        a.record_wechat_answer("wx1", "f1", "<A/>", t(0), lease)
            .await
            .unwrap()
            .as_deref(),
        Some("<A/>")
    );
    assert_eq!(
        b.record_wechat_answer("wx1", "f1", "<B/>", t(1), lease)
            .await
            .unwrap()
            .as_deref(),
        Some("<A/>")
    );
    assert_eq!(
        b.claim_wechat_message("wx1", "f1", t(7), lease)
            .await
            .unwrap(),
        MessageClaim::Answered("<A/>".to_string())
    );
    // Another account's message with the same key is another message.
    assert_eq!(
        b.record_wechat_answer("wx2", "f1", "<B/>", t(1), lease)
            .await
            .unwrap()
            .as_deref(),
        Some("<B/>")
    );
    // A request still working on it (a slow answer, claimed first): `success` for now ...
    assert_eq!(
        a.claim_wechat_message("wx1", "f2", t(10), lease)
            .await
            .unwrap(),
        MessageClaim::New
    );
    assert_eq!(
        b.record_wechat_answer("wx1", "f2", "<B/>", t(11), lease)
            .await
            .unwrap(),
        None
    );
    // ... and once its lease is over (its instance died), the answer takes its place.
    assert_eq!(
        b.record_wechat_answer("wx1", "f2", "<B/>", t(20), lease)
            .await
            .unwrap()
            .as_deref(),
        Some("<B/>")
    );
    assert_eq!(
        a.claim_wechat_message("wx1", "f2", t(21), lease)
            .await
            .unwrap(),
        MessageClaim::Answered("<B/>".to_string())
    );
    // Many requests for one message at once (batched together on SQLite): one answer.
    let given = futures::future::join_all((0..20).map(|i| {
        let store = if i % 2 == 0 { a.clone() } else { b.clone() };
        async move {
            store
                .record_wechat_answer("wx1", "f3", &format!("<R{i}/>"), t(12), lease)
                .await
                .unwrap()
                .expect("an answer")
        }
    }))
    .await;
    assert!(given.iter().all(|g| *g == given[0]), "{given:?}");
    // Old records are forgotten (received before t(5): f1 of both accounts), newer kept.
    assert_eq!(a.purge_wechat_messages(t(5)).await.unwrap(), 2);
    assert_eq!(b.purge_wechat_messages(t(5)).await.unwrap(), 0);
    assert_eq!(
        b.claim_wechat_message("wx1", "f1", t(30), lease)
            .await
            .unwrap(),
        MessageClaim::New
    );
    assert_eq!(
        b.claim_wechat_message("wx1", "f2", t(30), lease)
            .await
            .unwrap(),
        MessageClaim::Answered("<B/>".to_string())
    );
}

async fn a_mass_send_report_is_recorded_once_whichever_instance_gets_it(db: Db) {
    let (a, b) = (db.connect().await, db.connect().await);
    let report = gongkai::store::WechatMassResult {
        appid: "wx1".into(),
        msg_id: "1000001625".into(),
        status: "err(30003)".into(),
        total_count: Some(0),
        filter_count: Some(0),
        sent_count: Some(0),
        error_count: Some(0),
        received_at: None,
        times_received: 1,
    };
    assert_eq!(
        a.wechat_mass_result("wx1", "1000001625").await.unwrap(),
        None
    );
    assert!(a.record_wechat_mass_result(&report, t(0)).await.unwrap());
    let mut again = report.clone();
    again.status = "send success".into();
    assert!(!b.record_wechat_mass_result(&again, t(5)).await.unwrap());
    let kept = b
        .wechat_mass_result("wx1", "1000001625")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(kept.status, "err(30003)", "the first report is kept");
    assert_eq!(kept.times_received, 2);
    assert_eq!(kept.received_at, Some(t(0)));
    assert_eq!(
        b.wechat_mass_result("wx2", "1000001625").await.unwrap(),
        None
    );
}

/// Every disclosure found for `q` (up to `limit`), in order.
async fn search_ids(store: &Arc<dyn Store>, q: &str, limit: usize) -> Vec<String> {
    let query = gongkai::wechat_callback::search::SearchQuery::parse(q).expect("a query");
    store
        .search_published(DEPT, &query, SearchMatch::All, limit)
        .await
        .expect("search")
        .into_iter()
        .map(|i| i.disclosure_id)
        .collect()
}

async fn search_ranks_the_phrase_in_titles_first_then_newest_within_each_tier(db: Db) {
    let store = db.connect().await;
    let generation = store.published_generation();
    // Forty notices with 低保 in the body only (days 1..=28 of March, some twice), two
    // older ones with it in the title, and the words of 养老补贴 in a row or apart.
    for n in 1..=40u32 {
        let body = format!("<p>第{n}批城乡低保对象名单</p>");
        let day = (n - 1) % 28 + 1;
        let a = article(&format!("B{n:02}"), 1, &format!("第{n}号公示"), &body, day);
        ingest(&store, a, &["site"], t(0)).await;
    }
    for (id, day) in [("T1", 1), ("T2", 2)] {
        let a = article(id, 1, "城乡低保资金发放公示", "", day);
        ingest(&store, a, &["site"], t(0)).await;
    }
    let p1 = article("P1", 1, "通知", "<p>高龄养老补贴发放</p>", 3);
    ingest(&store, p1, &["site"], t(0)).await;
    ingest(
        &store,
        article("P2", 1, "养老金和高龄老补贴", "", 9),
        &["site"],
        t(0),
    )
    .await;
    ingest(
        &store,
        article("P3", 1, "养老补贴名单", "", 2),
        &["site"],
        t(0),
    )
    .await;
    deliver_all(&store, t(1)).await;
    assert!(
        store.published_generation() > generation,
        "a delivery changes the generation"
    );
    store.refresh_search_index().await.unwrap();

    // The title matches first (newest first), then the newest body matches (day 28: B28;
    // day 12: B12 and B40, the later stored first).
    let found = search_ids(&store, "低保", 6).await;
    assert_eq!(found, ["T2", "T1", "B28", "B27", "B26", "B25"]);
    let found = search_ids(&store, "低保", 50).await;
    assert_eq!(found.len(), 42);
    // The phrase in a title, then the phrase anywhere, then all the words apart.
    assert_eq!(search_ids(&store, "养老补贴", 5).await, ["P3", "P1", "P2"]);

    let before = store.published_generation();
    store
        .withdraw_disclosure(DEPT, "T2", "cli:op", None, t(2))
        .await
        .unwrap();
    assert!(store.published_generation() > before, "a withdrawal too");
    assert_eq!(search_ids(&store, "低保", 2).await, ["T1", "B28"]);
}

/// A revision with an HTML body, published on `publish_date`.
fn article(id: &str, rev: i64, title: &str, body: &str, day: u32) -> NewDisclosure {
    NewDisclosure {
        disclosure_id: id.to_string(),
        revision: rev,
        title: title.to_string(),
        category: "通知公告".to_string(),
        publish_date: Some(date(2025, 3, day)),
        formed_date: date(2025, 2, 28),
        content_hash: format!("hash-of-{id}-{rev}"),
        json: serde_json::json!({"id": id, "revision": rev, "body_html": body}).to_string(),
        submitted_by: "api".to_string(),
    }
}

/// Delivers everything due.
async fn deliver_all(store: &Arc<dyn Store>, now: DateTime<Utc>) {
    for c in claim(store, "w", now).await {
        let id = format!("{}-{}", c.delivery.disclosure_id, c.delivery.revision);
        complete(store, &c, "w", delivered(&id), now).await;
    }
}

async fn search(store: &Arc<dyn Store>, q: &str, mode: SearchMatch) -> Vec<(String, i64)> {
    let query = gongkai::wechat_callback::search::SearchQuery::parse(q).expect("a query");
    store
        .search_published(DEPT, &query, mode, 10)
        .await
        .expect("search")
        .into_iter()
        .map(|i| (i.disclosure_id, i.revision))
        .collect()
}

fn found(items: &[(&str, i64)]) -> Vec<(String, i64)> {
    items.iter().map(|(id, r)| (id.to_string(), *r)).collect()
}

async fn search_finds_the_latest_published_revision_and_never_a_withdrawn_one(db: Db) {
    let (store, other) = (db.connect().await, db.connect().await);
    let title_match = article(
        "GK-1",
        1,
        "2025年城乡低保资金发放公示",
        "<p>名单见附件</p>",
        1,
    );
    let body_match = article(
        "GK-2",
        1,
        "殡葬服务收费标准",
        "<p>对低保对象减免&amp;基本殡葬服务费用</p>",
        5,
    );
    let unpublished = article("GK-3", 1, "低保资金申请指南", "", 6);
    let withdrawn = article("GK-4", 1, "低保资金补发通知", "", 7);
    ingest(&store, title_match, &["site"], t(0)).await;
    ingest(&store, body_match, &["site"], t(0)).await;
    ingest(&store, withdrawn, &["site"], t(0)).await;
    // Other items, so that 低保 is a rare word, as in a real index (FTS5's bm25 gives a
    // word in most documents no weight at all, and then only recency orders).
    for n in 1..=6 {
        let filler = article(
            &format!("GK-F{n}"),
            1,
            &format!("第{n}号道路施工通告"),
            "",
            2,
        );
        ingest(&store, filler, &["site"], t(0)).await;
    }
    deliver_all(&store, t(1)).await;
    // Stored, but on no channel: never published.
    ingest(&store, unpublished, &[], t(2)).await;
    store
        .withdraw_disclosure(DEPT, "GK-4", "cli:op", None, t(3))
        .await
        .unwrap();

    // Every stored revision is indexed once, whichever instance refreshes.
    assert_eq!(store.refresh_search_index().await.unwrap(), 10);
    assert_eq!(other.refresh_search_index().await.unwrap(), 0);
    assert_eq!(store.refresh_search_index().await.unwrap(), 0);

    // A title match ranks above a body match, even a newer one.
    assert_eq!(
        search(&other, "低保", SearchMatch::All).await,
        found(&[("GK-1", 1), ("GK-2", 1)])
    );
    assert_eq!(
        search(&store, "低保资金", SearchMatch::All).await,
        found(&[("GK-1", 1)])
    );
    assert_eq!(
        search(&store, "殡葬", SearchMatch::All).await,
        found(&[("GK-2", 1)])
    );
    assert!(search(&store, "低保殡葬补贴", SearchMatch::All)
        .await
        .is_empty());
    let any = search(&store, "低保殡葬补贴", SearchMatch::Any).await;
    assert_eq!(any.len(), 2, "{any:?}");
    assert!(search(&store, "申请指南", SearchMatch::Any)
        .await
        .is_empty());
    assert!(search(&store, "补发", SearchMatch::Any).await.is_empty());

    // A correction is found once it is delivered, as its latest revision.
    let correction = article("GK-1", 2, "2025年城乡低保资金发放公示（更正）", "", 1);
    ingest(&store, correction, &["site"], t(10)).await;
    assert_eq!(other.refresh_search_index().await.unwrap(), 1);
    assert_eq!(search(&store, "更正", SearchMatch::All).await, found(&[]));
    assert_eq!(
        search(&store, "低保资金", SearchMatch::All).await,
        found(&[("GK-1", 1)])
    );
    deliver_all(&store, t(11)).await;
    assert_eq!(
        search(&store, "更正", SearchMatch::All).await,
        found(&[("GK-1", 2)])
    );
    assert_eq!(
        search(&store, "低保资金", SearchMatch::All).await,
        found(&[("GK-1", 2)])
    );

    // Withdrawn: gone from every answer at once.
    store
        .withdraw_disclosure(DEPT, "GK-1", "cli:op", None, t(12))
        .await
        .unwrap();
    assert_eq!(
        search(&other, "低保", SearchMatch::Any).await,
        found(&[("GK-2", 1)])
    );
}

async fn the_latest_published_are_by_publish_date_and_category(db: Db) {
    let store = db.connect().await;
    let mut rule = article("GK-1", 1, "规划一", "", 3);
    rule.category = "规划信息".to_string();
    let mut undated = article("GK-4", 1, "无日期", "", 1);
    undated.publish_date = None;
    ingest(&store, rule, &["site"], t(0)).await;
    ingest(&store, article("GK-2", 1, "通知二", "", 9), &["site"], t(0)).await;
    ingest(&store, undated, &["site"], t(0)).await;
    ingest(&store, article("GK-3", 1, "通知三", "", 5), &["site"], t(0)).await;
    deliver_all(&store, t(1)).await;
    ingest(
        &store,
        article("GK-5", 1, "未发出", "", 20),
        &["site"],
        t(2),
    )
    .await;

    let latest = |items: Vec<gongkai::store::PublishedItem>| {
        items
            .into_iter()
            .map(|i| (i.disclosure_id, i.url.unwrap_or_default()))
            .collect::<Vec<_>>()
    };
    let url = |id: &str| format!("https://example.gov.cn/{id}-1");
    // Undated items come last, on both backends.
    assert_eq!(
        latest(store.latest_published(DEPT, None, 10).await.unwrap()),
        vec![
            ("GK-2".to_string(), url("GK-2")),
            ("GK-3".to_string(), url("GK-3")),
            ("GK-1".to_string(), url("GK-1")),
            ("GK-4".to_string(), url("GK-4")),
        ]
    );
    assert_eq!(
        latest(store.latest_published(DEPT, None, 2).await.unwrap()).len(),
        2
    );
    assert_eq!(
        latest(
            store
                .latest_published(DEPT, Some("规划信息"), 10)
                .await
                .unwrap()
        ),
        vec![("GK-1".to_string(), url("GK-1"))]
    );
}

async fn report_revisions_read_the_report_fields_of_the_stored_json(db: Db) {
    let store = db.connect().await;
    let mut rule = revision("GK-1", 1, "规章");
    rule.json = serde_json::json!({
        "id": "GK-1", "doc_kind": "规章", "art20_item": "一", "validity": "有效",
        "valid_to": "2030-12-31"
    })
    .to_string();
    let mut repeal = revision("GK-2", 1, "废止");
    repeal.json =
        serde_json::json!({"id": "GK-2", "validity": "废止", "replaces": "GK-0"}).to_string();
    let plain = revision("GK-3", 1, "通知");
    ingest(&store, rule, &["site"], t(0)).await;
    ingest(&store, repeal, &["site"], t(0)).await;
    ingest(&store, plain, &["site"], t(0)).await;
    deliver_all(&store, t(3600 * 20)).await;

    let revs = store.report_revisions(DEPT).await.unwrap();
    let got: Vec<_> = revs
        .iter()
        .map(|r| {
            (
                r.disclosure_id.as_str(),
                r.doc_kind.as_deref(),
                r.art20_item.as_deref(),
                r.validity.as_deref(),
                r.replaces.as_deref(),
                r.valid_to,
                r.item_first_delivered_on,
                r.delivered_on,
            )
        })
        .collect();
    // Delivered at 2025-03-02 04:00 UTC: the 2nd in China time (UTC+8).
    let day = date(2025, 3, 2);
    assert_eq!(
        got,
        vec![
            (
                "GK-1",
                Some("规章"),
                Some("一"),
                Some("有效"),
                None,
                Some(date(2030, 12, 31)),
                day,
                Some(day)
            ),
            (
                "GK-2",
                None,
                None,
                Some("废止"),
                Some("GK-0"),
                None,
                day,
                Some(day)
            ),
        ]
    );
}

/// The operator console's part of the store (issue 8): accounts, the lock-out, sessions
/// (expiry, disabled accounts) and the day list. Generic over `Store`, like `story`.
async fn operator_story(store: Arc<dyn Store>) {
    use gongkai::store::{DisclosureQuery, NewOperator, NewSession, Role, StoreError};
    let t0 = Utc::now();
    let new = NewOperator {
        department: DEPT.to_string(),
        name: "张三".into(),
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
        role: Role::Admin,
    };
    store.create_operator(&new, t0).await.unwrap();
    assert!(matches!(
        store.create_operator(&new, t0).await,
        Err(StoreError::Conflict(_))
    ));
    let op = store.get_operator("张三").await.unwrap().unwrap();
    assert_eq!(op.role, Role::Admin);
    assert!(!op.disabled);
    assert!(store.get_operator("nobody").await.unwrap().is_none());

    // Three failures lock for 15 minutes and start the count again; a success resets.
    let lock = Duration::from_secs(900);
    assert_eq!(
        store
            .record_failed_sign_in("张三", t0, 3, lock)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store
            .record_failed_sign_in("张三", t0, 3, lock)
            .await
            .unwrap(),
        None
    );
    let until = store
        .record_failed_sign_in("张三", t0, 3, lock)
        .await
        .unwrap()
        .expect("the third failure locks");
    assert_eq!(
        until.timestamp(),
        (t0 + chrono::Duration::minutes(15)).timestamp()
    );
    let op = store.get_operator("张三").await.unwrap().unwrap();
    assert_eq!(op.failed_sign_ins, 0);
    assert!(op.locked_until.is_some());
    store.record_sign_in("张三", t0).await.unwrap();
    let op = store.get_operator("张三").await.unwrap().unwrap();
    assert!(op.locked_until.is_none() && op.last_sign_in_at.is_some());

    // Sessions: found while unexpired, gone after expiry, on sign-out and when disabled.
    let session = |id: &str, ttl_min: i64| NewSession {
        id_sha256: id.into(),
        operator: "张三".into(),
        csrf_token: "c".repeat(64),
        created_at: t0,
        expires_at: t0 + chrono::Duration::minutes(ttl_min),
    };
    store.create_session(&session("s1", 60)).await.unwrap();
    store.create_session(&session("s2", 60)).await.unwrap();
    let s = store.get_session("s1", t0).await.unwrap().unwrap();
    assert_eq!((s.operator.as_str(), s.role), ("张三", Role::Admin));
    assert!(store
        .get_session("s1", t0 + chrono::Duration::minutes(61))
        .await
        .unwrap()
        .is_none());
    store.delete_session("s1").await.unwrap();
    assert!(store.get_session("s1", t0).await.unwrap().is_none());
    store.set_operator_disabled("张三", true).await.unwrap();
    assert!(store.get_session("s2", t0).await.unwrap().is_none());
    assert!(matches!(
        store.set_operator_disabled("nobody", true).await,
        Err(StoreError::NotFound(_))
    ));
    assert_eq!(store.list_operators().await.unwrap().len(), 1);

    // The day list: latest revision, by received time, text and ids.
    ingest(
        &store,
        revision("zpmzj-2017-00001", 1, "甲"),
        &["gov_site"],
        t0,
    )
    .await;
    ingest(
        &store,
        revision("zpmzj-2017-00002", 1, "乙"),
        &["gov_site"],
        t0,
    )
    .await;
    let all = store
        .list_disclosures(
            DEPT,
            &DisclosureQuery {
                limit: 10,
                ..DisclosureQuery::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(all.len(), 2);
    let one = store
        .list_disclosures(
            DEPT,
            &DisclosureQuery {
                text: Some("00002".into()),
                received_from: Some(t0 - chrono::Duration::minutes(1)),
                limit: 10,
                ..DisclosureQuery::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(one.len(), 1);
    assert_eq!(one[0].disclosure_id, "zpmzj-2017-00002");
    let counts = store.count_deliveries(Some(DEPT)).await.unwrap();
    assert_eq!(counts.iter().map(|c| c.count).sum::<i64>(), 2);
    assert_eq!(
        store
            .count_due(t0 + chrono::Duration::minutes(1))
            .await
            .unwrap(),
        2
    );
    assert!(store.last_delivered(DEPT,).await.unwrap().is_empty());
}

async fn operator_accounts_sessions_and_the_day_list_hold(db: Db) {
    operator_story(db.connect().await).await;
}

// ---- departments (issue 7): one ledger, many departments, each seeing only its own ----

const FZ: &str = "minzheng-fz";
const XM: &str = "minzheng-xm";

/// Stores a revision of `department` that must be new, returning its delivery ids.
async fn ingest_in(
    store: &Arc<dyn Store>,
    department: &str,
    new: NewDisclosure,
    channels: &[&str],
    now: DateTime<Utc>,
) -> Vec<i64> {
    match store
        .insert_disclosure(department, &new, &to(channels), now)
        .await
    {
        Ok(IngestOutcome::Created { delivery_ids }) => delivery_ids,
        other => panic!("expected a new revision of {department}, got {other:?}"),
    }
}

fn assert_not_found<T: std::fmt::Debug>(result: Result<T, StoreError>) {
    match result {
        Err(StoreError::NotFound(_)) => {}
        other => panic!("expected NotFound, got {other:?}"),
    }
}

/// Two departments use the same disclosure id: each stores, reads, lists, retries and
/// withdraws only its own, and another department's delivery id is "not found".
async fn departments_share_one_ledger_but_never_see_each_others_items(db: Db) {
    let store = db.connect().await;
    // Arrange: the same id and revision in both departments, different content.
    let fz = ingest_in(
        &store,
        FZ,
        revision("GK-1", 1, "福州的低保"),
        &["site"],
        t(0),
    )
    .await;
    let xm = ingest_in(
        &store,
        XM,
        revision("GK-1", 1, "厦门的低保"),
        &["site"],
        t(0),
    )
    .await;
    assert_ne!(fz, xm);
    // Resubmitting is answered per department.
    match store
        .insert_disclosure(XM, &revision("GK-1", 1, "厦门的低保"), &to(&["site"]), t(1))
        .await
    {
        Ok(IngestOutcome::Unchanged { delivery_ids }) => assert_eq!(delivery_ids, xm),
        other => panic!("expected unchanged, got {other:?}"),
    }

    // Reads see their own department's item only.
    let d = store.get_disclosure(FZ, "GK-1", None).await.unwrap();
    assert_eq!(
        (d.department.as_str(), d.title.as_str()),
        (FZ, "关于福州的低保的通知")
    );
    let d = store.get_disclosure(XM, "GK-1", Some(1)).await.unwrap();
    assert_eq!(
        (d.department.as_str(), d.title.as_str()),
        (XM, "关于厦门的低保的通知")
    );
    assert_not_found(store.get_disclosure(DEPT, "GK-1", None).await);

    let listed = store
        .list_deliveries(FZ, &DeliveryFilter::default())
        .await
        .unwrap();
    assert_eq!(listed.iter().map(|d| d.id).collect::<Vec<_>>(), fz);
    assert!(listed.iter().all(|d| d.department == FZ));
    let by_id = store
        .list_deliveries(
            XM,
            &DeliveryFilter {
                disclosure_id: Some("GK-1".into()),
                ..DeliveryFilter::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(by_id.iter().map(|d| d.id).collect::<Vec<_>>(), xm);
    assert!(store
        .list_deliveries(DEPT, &DeliveryFilter::default())
        .await
        .unwrap()
        .is_empty());

    // Another department's delivery id is not found, for every reading and for a retry.
    assert_eq!(store.get_delivery(FZ, fz[0]).await.unwrap().department, FZ);
    assert_not_found(store.get_delivery(FZ, xm[0]).await);
    assert_not_found(store.list_attempts(FZ, xm[0]).await);
    assert_eq!(
        store.retry_now(FZ, &[xm[0]], "王科员", t(2)).await.unwrap(),
        vec![RetryResult::Refused {
            id: xm[0],
            reason: "没有这个投递".into()
        }]
    );
    let untouched = store.get_delivery(XM, xm[0]).await.unwrap();
    assert_eq!(untouched.next_trigger, AttemptTrigger::Scheduled);
    assert_eq!(untouched.requested_by, None);

    // A correction in one department supersedes that department's deliveries only.
    let fz2 = ingest_in(
        &store,
        FZ,
        revision("GK-1", 2, "福州的低保（更正）"),
        &["site"],
        t(3),
    )
    .await;
    assert_eq!(
        status_in(&store, FZ, fz[0]).await,
        DeliveryStatus::Withdrawn
    );
    assert_eq!(status_in(&store, XM, xm[0]).await, DeliveryStatus::Pending);

    // Withdrawing in one department leaves the other's item alone.
    assert_not_found(
        store
            .withdraw_disclosure(DEPT, "GK-1", "王科员", None, t(4))
            .await,
    );
    store
        .withdraw_disclosure(FZ, "GK-1", "王科员", Some("有误"), t(4))
        .await
        .unwrap();
    assert!(store
        .get_disclosure(FZ, "GK-1", None)
        .await
        .unwrap()
        .withdrawn_at
        .is_some());
    assert!(store
        .get_disclosure(XM, "GK-1", None)
        .await
        .unwrap()
        .withdrawn_at
        .is_none());
    assert_eq!(
        status_in(&store, FZ, fz2[0]).await,
        DeliveryStatus::Withdrawn
    );
    assert_eq!(status_in(&store, XM, xm[0]).await, DeliveryStatus::Pending);
    // …and a withdrawn item of one department does not stop the other from correcting its own.
    ingest_in(
        &store,
        XM,
        revision("GK-1", 2, "厦门的低保（更正）"),
        &["site"],
        t(5),
    )
    .await;
}

async fn status_in(store: &Arc<dyn Store>, department: &str, id: i64) -> DeliveryStatus {
    store.get_delivery(department, id).await.unwrap().status
}

/// The queue is one for every department (claims are global and say whose each delivery
/// is), while the order rule "an older delivery of the same item and channel first" holds
/// within a department only: another department's item with the same id never waits.
async fn one_queue_serves_every_department_and_the_sibling_rule_stays_within_one(db: Db) {
    let store = db.connect().await;
    let fz = ingest_in(&store, FZ, revision("GK-1", 1, "福州"), &["site"], t(0)).await;
    let xm = ingest_in(&store, XM, revision("GK-1", 1, "厦门"), &["site"], t(0)).await;
    let fz2 = ingest_in(&store, FZ, revision("GK-2", 1, "福州二"), &["site"], t(0)).await;
    // FZ's first delivery is in flight: XM's GK-1 (same id and channel name) is still due.
    let first = store.claim_due("w1", t(1), LEASE, 1).await.unwrap();
    assert_eq!(ids(&first), fz);
    assert_eq!(first[0].delivery.department, FZ);
    assert_eq!(first[0].disclosure.department, FZ);
    assert_eq!(first[0].disclosure.title, "关于福州的通知");
    let rest = claim(&store, "w2", t(1)).await;
    assert_eq!(ids(&rest), [xm.clone(), fz2].concat());
    let xm_claim = &rest[0];
    assert_eq!(
        (
            xm_claim.delivery.department.as_str(),
            xm_claim.disclosure.title.as_str()
        ),
        (XM, "关于厦门的通知")
    );
    // Completions are by claim token, whoever's the delivery is.
    complete(&store, xm_claim, "w2", delivered("xm-1"), t(2)).await;
    assert_eq!(
        status_in(&store, XM, xm[0]).await,
        DeliveryStatus::Delivered
    );
    assert_eq!(status_in(&store, FZ, fz[0]).await, DeliveryStatus::InFlight);
    // A higher revision of FZ waits for FZ's own revision 1 only.
    let fz_rev2 = ingest_in(&store, FZ, revision("GK-1", 2, "福州更正"), &["site"], t(3)).await;
    assert!(claim(&store, "w3", t(4)).await.is_empty());
    complete(&store, &first[0], "w1", delivered("fz-1"), t(5)).await;
    assert_eq!(ids(&claim(&store, "w3", t(6)).await), fz_rev2);
}

/// Reports, the published list, search and the console's counts are per department.
async fn reports_search_and_counts_are_per_department(db: Db) {
    let store = db.connect().await;
    ingest_in(
        &store,
        FZ,
        article("GK-1", 1, "福州市低保资金发放公示", "<p>低保</p>", 3),
        &["site"],
        t(0),
    )
    .await;
    ingest_in(
        &store,
        XM,
        article("GK-1", 1, "厦门市临时救助公示", "<p>临时救助</p>", 4),
        &["site"],
        t(0),
    )
    .await;
    ingest_in(
        &store,
        XM,
        article("GK-2", 1, "厦门市低保标准调整", "<p>低保</p>", 5),
        &["site"],
        t(0),
    )
    .await;
    let mut rule = article("GK-9", 1, "福州市某规章", "<p>规章</p>", 6);
    rule.json = serde_json::json!({"doc_kind": "规章", "body_html": "<p>规章</p>"}).to_string();
    ingest_in(&store, FZ, rule, &["site"], t(0)).await;
    deliver_all(&store, t(1)).await;
    store.refresh_search_index().await.unwrap();

    let items = |groups: Vec<gongkai::store::PublishedGroup>| -> u64 {
        groups.iter().filter(|g| g.primary).map(|g| g.items).sum()
    };
    assert_eq!(items(store.published_groups(FZ).await.unwrap()), 2);
    assert_eq!(items(store.published_groups(XM).await.unwrap()), 2);
    assert_eq!(items(store.published_groups(DEPT).await.unwrap()), 0);
    let revisions = store.report_revisions(FZ).await.unwrap();
    assert_eq!(
        revisions
            .iter()
            .map(|r| r.disclosure_id.as_str())
            .collect::<Vec<_>>(),
        ["GK-9"]
    );
    assert!(store.report_revisions(XM).await.unwrap().is_empty());
    let published = store.list_published(XM).await.unwrap();
    assert_eq!(
        published
            .iter()
            .map(|r| r.disclosure_id.as_str())
            .collect::<Vec<_>>(),
        ["GK-1", "GK-2"]
    );

    // The same two-character word finds only the asking department's items.
    let tokens = gongkai::wechat_callback::search::SearchQuery::parse("低保").unwrap();
    let found = |dept: &'static str| {
        let store = store.clone();
        let tokens = tokens.clone();
        async move {
            store
                .search_published(dept, &tokens, SearchMatch::All, 10)
                .await
                .unwrap()
                .into_iter()
                .map(|i| i.title)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(found(FZ).await, ["福州市低保资金发放公示"]);
    assert_eq!(found(XM).await, ["厦门市低保标准调整"]);
    assert!(found(DEPT).await.is_empty());
    let latest = store.latest_published(FZ, None, 10).await.unwrap();
    assert_eq!(
        latest.iter().map(|i| i.title.as_str()).collect::<Vec<_>>(),
        ["福州市某规章", "福州市低保资金发放公示"]
    );

    // The console's counts and lists.
    let count =
        |rows: Vec<gongkai::store::DeliveryCount>| -> i64 { rows.iter().map(|c| c.count).sum() };
    assert_eq!(count(store.count_deliveries(Some(FZ)).await.unwrap()), 2);
    assert_eq!(count(store.count_deliveries(Some(XM)).await.unwrap()), 2);
    assert_eq!(count(store.count_deliveries(None).await.unwrap()), 4);
    assert_eq!(store.last_delivered(FZ).await.unwrap().len(), 1);
    assert!(store.last_delivered(DEPT).await.unwrap().is_empty());
    let listed = store
        .list_disclosures(
            XM,
            &gongkai::store::DisclosureQuery {
                limit: 100,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(listed.len(), 2);
    assert!(listed.iter().all(|d| d.department == XM));

    // A screen's record of when an item came down touches its own department's row only.
    store
        .record_displayed_until(FZ, "site", "GK-1", 1, t(9))
        .await
        .unwrap();
    let fz_rows = store
        .list_deliveries(FZ, &DeliveryFilter::default())
        .await
        .unwrap();
    assert!(fz_rows
        .iter()
        .all(|d| d.displayed_until.is_some() == (d.disclosure_id == "GK-1")));
    let xm_rows = store
        .list_deliveries(XM, &DeliveryFilter::default())
        .await
        .unwrap();
    assert!(xm_rows.iter().all(|d| d.displayed_until.is_none()));
}

// ---- upgrading: a ledger from before departments (migrations 0001–0007) ----

/// The migrations of `backend` before 0008, in a folder of their own: a database as a
/// county office has it before departments existed.
fn migrations_before_departments(backend: &str) -> TempDir {
    let dir = tempfile::tempdir().expect("create a temporary directory");
    let from = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("src/store/migrations")
        .join(backend);
    for entry in std::fs::read_dir(&from).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_string();
        if name.as_str() < "0008" {
            std::fs::copy(&path, dir.path().join(name)).unwrap();
        }
    }
    dir
}

/// What the old ledger holds: GK-1 delivered to the website (with its attempt, its report
/// row on SQLite and its search index entry), GK-2 waiting.
const OLD_ROWS: &str = "
    INSERT INTO disclosures (disclosure_id, revision, title, category, publish_date, formed_date,
        content_hash, json, submitted_by, received_at)
    VALUES ('GK-1', 1, '关于低保资金发放情况的公示', 'shjz', '2017-04-07', '2017-04-03', 'h1',
            '{\"body_html\": \"<p>低保资金</p>\"}', 'api', 1491500000000),
           ('GK-2', 1, '关于养老补贴的通知', 'shjz', '2017-04-08', '2017-04-03', 'h2',
            '{\"body_html\": \"<p>养老补贴</p>\"}', 'api', 1491500000000);
    INSERT INTO deliveries (disclosure_id, revision, channel, kind, action, status, attempts,
        next_attempt_at, created_at, updated_at, delivered_at, url)
    VALUES ('GK-1', 1, 'gov_site', 'gov_site', 'publish', 'delivered', 1, NULL,
            1491500000000, 1491500001000, 1491500001000, 'https://example.gov.cn/1.html'),
           ('GK-2', 1, 'gov_site', 'gov_site', 'publish', 'pending', 0, 1491500000000,
            1491500000000, 1491500000000, NULL, NULL);
    INSERT INTO attempts (delivery_id, number, trigger, started_at, finished_at, outcome,
        http_status, duration_ms)
    SELECT id, 1, 'scheduled', 1491500000500, 1491500001000, 'delivered', 201, 500
    FROM deliveries WHERE disclosure_id = 'GK-1';
";

/// After the upgrade everything belongs to `default`: the same ids, the delivered item
/// counts and is found, the waiting one is claimed, another department can use the same id.
async fn check_upgraded(store: &Arc<dyn Store>) {
    let d = store.get_disclosure(DEPT, "GK-1", None).await.unwrap();
    assert_eq!(d.department, DEPT);
    let rows = store
        .list_deliveries(DEPT, &DeliveryFilter::default())
        .await
        .unwrap();
    assert_eq!(rows.len(), 2);
    let delivered = rows.iter().find(|r| r.disclosure_id == "GK-1").unwrap();
    assert_eq!(delivered.status, DeliveryStatus::Delivered);
    assert_eq!(delivered.department, DEPT);
    assert_eq!(
        delivered.url.as_deref(),
        Some("https://example.gov.cn/1.html")
    );
    let attempts = store.list_attempts(DEPT, delivered.id).await.unwrap();
    assert_eq!(attempts.len(), 1);
    assert_eq!(attempts[0].http_status, Some(201));
    let groups = store.published_groups(DEPT).await.unwrap();
    assert_eq!(
        groups
            .iter()
            .filter(|g| g.primary)
            .map(|g| g.items)
            .sum::<u64>(),
        1
    );
    store.refresh_search_index().await.unwrap();
    let tokens = gongkai::wechat_callback::search::SearchQuery::parse("低保").unwrap();
    let found = store
        .search_published(DEPT, &tokens, SearchMatch::All, 5)
        .await
        .unwrap();
    assert_eq!(
        found
            .iter()
            .map(|i| i.disclosure_id.as_str())
            .collect::<Vec<_>>(),
        ["GK-1"]
    );
    let claimed = claim(store, "w", t(0)).await;
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].delivery.disclosure_id, "GK-2");
    assert_eq!(claimed[0].delivery.department, DEPT);
    ingest_in(store, FZ, revision("GK-1", 1, "福州"), &["site"], t(1)).await;
    assert_eq!(
        store
            .get_disclosure(DEPT, "GK-1", None)
            .await
            .unwrap()
            .title,
        "关于低保资金发放情况的公示"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sqlite_ledger_from_before_departments_is_upgraded_into_default() {
    use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    let options = SqliteConnectOptions::new()
        .filename(&path)
        .create_if_missing(true)
        .foreign_keys(true);
    let pool = SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(options.clone())
        .await
        .unwrap();
    let old = migrations_before_departments("sqlite");
    sqlx::migrate::Migrator::new(old.path())
        .await
        .unwrap()
        .run(&pool)
        .await
        .unwrap();
    sqlx::raw_sql(OLD_ROWS).execute(&pool).await.unwrap();
    // SQLite keeps a report summary and indexes by rowid: as the old code left them.
    sqlx::raw_sql(
        "INSERT INTO report_published (disclosure_id, channel, kind, category, count_year,
             formed_date, delivered_on, is_primary)
         VALUES ('GK-1', 'gov_site', 'gov_site', 'shjz', 2017, '2017-04-03', '2017-04-07', 1);
         INSERT INTO search_docs (id, src_rowid, disclosure_id, revision)
         SELECT 1, rowid, disclosure_id, revision FROM disclosures WHERE disclosure_id = 'GK-1';",
    )
    .execute(&pool)
    .await
    .unwrap();
    let (head, body) = gongkai::wechat_callback::search::doc_text(
        "关于低保资金发放情况的公示",
        r#"{"body_html": "<p>低保资金</p>"}"#,
    );
    sqlx::query("INSERT INTO search_fts (rowid, title, body) VALUES (1, $1, $2)")
        .bind(gongkai::wechat_callback::search::index_text(&head))
        .bind(gongkai::wechat_callback::search::index_text(&body))
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;

    let store = gongkai::store::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    check_upgraded(&store).await;
    // Only 福州's GK-1, stored since, is new to the index.
    assert_eq!(store.refresh_search_index().await.unwrap(), 1);
    let pool = SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(options)
        .await
        .unwrap();
    let broken: Vec<sqlx::sqlite::SqliteRow> = sqlx::query("PRAGMA foreign_key_check")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert!(broken.is_empty(), "{} foreign key violations", broken.len());
    let docs: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM search_docs WHERE department = 'default'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(docs, 2, "GK-1 and GK-2 indexed once each");
    // Migration 0009 rebuilt the index (at start) with ids by date: GK-1, indexed first
    // of its day, is day × 2^24.
    let kept: i64 = sqlx::query_scalar(
        "SELECT id FROM search_docs WHERE department = 'default' AND disclosure_id = 'GK-1'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(kept >= 16_777_216 && kept % 16_777_216 == 0, "{kept}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_ledger_from_before_departments_is_upgraded_into_default() {
    let Some(db) = Db::postgres().await else {
        return;
    };
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(2)
        .connect(&db.url)
        .await
        .unwrap();
    let old = migrations_before_departments("postgres");
    sqlx::migrate::Migrator::new(old.path())
        .await
        .unwrap()
        .run(&pool)
        .await
        .unwrap();
    sqlx::raw_sql(OLD_ROWS).execute(&pool).await.unwrap();
    sqlx::raw_sql(
        "INSERT INTO search_pending (disclosure_id, revision)
         SELECT disclosure_id, revision FROM disclosures",
    )
    .execute(&pool)
    .await
    .unwrap();
    pool.close().await;
    let store = db.connect().await;
    check_upgraded(&store).await;
}
