//! Build order with a scripted lease and markers in memory: the verdicts
//! (superseded, equal, newer, unordered), the wait for a busy lease on a
//! paused clock, the fence, and the contract codes each failure maps to.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use super::*;
use crate::contract::{ErrorCode, Step, decode_job};
use crate::pipeline::DeployError;

const SCRIPT: &str = "acct/customers/site";

/// A lease in memory: one holder at a time; `lost` makes every check fail.
#[derive(Default)]
struct FakeLease {
    held: AtomicBool,
    tries: AtomicU32,
    releases: AtomicU32,
    lost: AtomicBool,
}

struct FakeHold(Arc<FakeLease>);

#[async_trait::async_trait]
impl ScriptLease for Arc<FakeLease> {
    async fn try_acquire(&self, _script: &str) -> Result<Option<Box<dyn LeaseHold>>, LeaseError> {
        self.tries.fetch_add(1, Ordering::SeqCst);
        if self.held.swap(true, Ordering::SeqCst) {
            return Ok(None);
        }
        Ok(Some(Box::new(FakeHold(self.clone()))))
    }
}

#[async_trait::async_trait]
impl LeaseHold for FakeHold {
    async fn check(&self) -> Result<(), LeaseError> {
        if self.0.lost.load(Ordering::SeqCst) {
            return Err(LeaseError::Lost {
                script: SCRIPT.into(),
                detail: "its broker connection closed".into(),
            });
        }
        Ok(())
    }

    async fn release(self: Box<Self>) {
        self.0.releases.fetch_add(1, Ordering::SeqCst);
        self.0.held.store(false, Ordering::SeqCst);
    }
}

fn order(lease: &Arc<FakeLease>, wait: Duration) -> ScriptOrder {
    ScriptOrder::new(Arc::new(lease.clone()), Markers::memory(), wait)
}

fn job(id: &str, created_at: Option<&str>) -> DeployJob {
    let mut body = serde_json::json!({
        "version": 1, "job_id": id, "namespace": "customers", "script_name": "site",
        "bundle": {"bucket": "sites", "prefix": "p/"}
    });
    if let Some(at) = created_at {
        body["created_at"] = at.into();
    }
    decode_job(body.to_string().as_bytes()).unwrap()
}

/// Runs `job`'s turn through to a deploy, as the pipeline does.
async fn deploy(order: &ScriptOrder, job: &DeployJob) -> Result<(), OrderError> {
    let turn = order.begin(SCRIPT, job).await?;
    let result = async {
        turn.fence().await?;
        turn.deployed().await
    }
    .await;
    turn.end().await;
    result
}

fn failure(e: OrderError) -> crate::contract::FailureInfo {
    DeployError::Order(e).to_failure()
}

#[tokio::test]
async fn an_older_build_is_superseded_an_equal_or_newer_one_deploys() {
    let lease = Arc::new(FakeLease::default());
    let order = order(&lease, Duration::from_secs(60));
    deploy(&order, &job("b2", Some("2026-01-01T10:00:02Z")))
        .await
        .unwrap();

    let err = deploy(&order, &job("b1", Some("2026-01-01T10:00:01Z")))
        .await
        .unwrap_err();
    assert!(matches!(err, OrderError::Superseded { .. }), "{err}");
    assert_eq!(
        err.to_string(),
        "acct/customers/site: created_at 2026-01-01T10:00:01Z is before that of the live \
         deployment, 2026-01-01T10:00:02Z (job b2); a newer build is live"
    );
    let superseded = failure(err);
    assert_eq!(
        (superseded.code, superseded.step, superseded.retryable),
        (ErrorCode::Superseded, Step::Validate, false)
    );

    // The same build again (a redelivery) and a newer one both deploy.
    deploy(&order, &job("b2", Some("2026-01-01T10:00:02Z")))
        .await
        .unwrap();
    deploy(&order, &job("b3", Some("2026-01-01T11:00:02+01:00")))
        .await
        .unwrap();
    deploy(&order, &job("b4", Some("2026-01-01T10:00:02.5Z")))
        .await
        .unwrap();
    let live = order.markers.read(SCRIPT).await.unwrap().unwrap();
    assert_eq!(live.job_id, "b4");
    assert_eq!(
        lease.releases.load(Ordering::SeqCst),
        5,
        "every turn released"
    );
    assert!(!lease.held.load(Ordering::SeqCst));
}

#[tokio::test]
async fn a_job_without_created_at_deploys_unordered_and_leaves_the_marker() {
    let lease = Arc::new(FakeLease::default());
    let order = order(&lease, Duration::from_secs(60));
    deploy(&order, &job("b2", Some("2026-01-01T10:00:02Z")))
        .await
        .unwrap();
    deploy(&order, &job("unordered", None)).await.unwrap();
    assert_eq!(lease.tries.load(Ordering::SeqCst), 2, "it took the lease");
    let live = order.markers.read(SCRIPT).await.unwrap().unwrap();
    assert_eq!(live.job_id, "b2", "the marker did not move");
}

#[tokio::test(start_paused = true)]
async fn a_busy_lease_is_waited_for_up_to_lease_wait_then_fails_retryable() {
    let lease = Arc::new(FakeLease::default());
    lease.held.store(true, Ordering::SeqCst);
    let order = order(&lease, Duration::from_secs(600));
    let started = tokio::time::Instant::now();
    let err = deploy(&order, &job("b1", Some("2026-01-01T10:00:01Z")))
        .await
        .unwrap_err();
    assert_eq!(started.elapsed(), Duration::from_secs(600), "waited it out");
    assert!(
        lease.tries.load(Ordering::SeqCst) > 10,
        "polled: {:?}",
        lease.tries
    );
    assert_eq!(
        err.to_string(),
        "acct/customers/site: script lease held by another worker for over 10m (worker.lease_wait)"
    );
    let busy = failure(err);
    assert_eq!(
        (busy.code, busy.step, busy.retryable),
        (ErrorCode::Internal, Step::Validate, true)
    );
}

#[tokio::test(start_paused = true)]
async fn a_lease_freed_while_waiting_is_taken_within_a_second() {
    let lease = Arc::new(FakeLease::default());
    lease.held.store(true, Ordering::SeqCst);
    let order = order(&lease, Duration::from_secs(600));
    let freed = {
        let lease = lease.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(30)).await;
            lease.held.store(false, Ordering::SeqCst);
        })
    };
    let started = tokio::time::Instant::now();
    deploy(&order, &job("b1", Some("2026-01-01T10:00:01Z")))
        .await
        .unwrap();
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_secs(30) && waited <= Duration::from_secs(31),
        "{waited:?}"
    );
    freed.await.unwrap();
}

#[tokio::test]
async fn a_lease_lost_before_the_put_stops_the_deploy_and_records_nothing() {
    let lease = Arc::new(FakeLease::default());
    let order = order(&lease, Duration::from_secs(60));
    let turn = order
        .begin(SCRIPT, &job("b1", Some("2026-01-01T10:00:01Z")))
        .await
        .unwrap();
    lease.lost.store(true, Ordering::SeqCst);
    let err = turn.fence().await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "acct/customers/site: script lease lost: its broker connection closed"
    );
    let lost = failure(err);
    assert_eq!(
        (lost.code, lost.step, lost.retryable),
        (ErrorCode::Internal, Step::Deploy, true)
    );
    // Lost after the PUT: the marker is not written either.
    assert!(matches!(
        turn.deployed().await,
        Err(OrderError::Lease(LeaseError::Lost { .. }))
    ));
    turn.end().await;
    assert_eq!(order.markers.read(SCRIPT).await.unwrap(), None);
}

#[tokio::test]
async fn a_created_at_far_ahead_of_the_clock_is_an_invalid_job_and_takes_no_lease() {
    let lease = Arc::new(FakeLease::default());
    let order = order(&lease, Duration::from_secs(60));
    let err = deploy(&order, &job("future", Some("2999-01-01T00:00:00Z")))
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "created_at: 2999-01-01T00:00:00Z is more than 5m ahead of this worker's clock"
    );
    let invalid = failure(err);
    assert_eq!(
        (invalid.code, invalid.retryable),
        (ErrorCode::InvalidJob, false)
    );
    assert_eq!(lease.tries.load(Ordering::SeqCst), 0);
    // A little skew is fine.
    let soon = (Utc::now() + chrono::TimeDelta::seconds(60)).to_rfc3339();
    deploy(&order, &job("soon", Some(&soon))).await.unwrap();
}
