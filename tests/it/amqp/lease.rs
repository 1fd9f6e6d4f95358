//! The script lease kept by the broker ([`BrokerLease`]), on its own: one
//! holder per script across processes and within one, released on request,
//! and gone with its holder's connection (the fence then says so).

use std::time::Duration;

use wfp_deployer::amqp::{BrokerLease, LEASE_CONNECTION_NAME};
use wfp_deployer::pipeline::{LeaseError, ScriptLease};

use super::*;

/// A script name of this test's own: lease queues are per script, not per
/// topology.
fn script() -> String {
    format!("acct/customers/lease-{}", uuid::Uuid::new_v4().simple())
}

#[tokio::test]
async fn one_holder_at_a_time_across_processes_and_within_one() {
    let (settings, _topology) = unique_amqp_settings();
    let (a, b) = (
        BrokerLease::new(&settings, "it-a"),
        BrokerLease::new(&settings, "it-b"),
    );
    let script = script();
    let held = a
        .try_acquire(&script)
        .await
        .unwrap()
        .expect("free at first");
    assert!(
        b.try_acquire(&script).await.unwrap().is_none(),
        "another process waits"
    );
    assert!(
        a.try_acquire(&script).await.unwrap().is_none(),
        "so does another job here"
    );
    assert!(
        b.try_acquire(&format!("{script}-2"))
            .await
            .unwrap()
            .is_some(),
        "another script does not"
    );
    held.check().await.expect("still held");
    held.release().await;
    let again = b
        .try_acquire(&script)
        .await
        .unwrap()
        .expect("free once released");
    again.release().await;
}

#[tokio::test]
async fn a_hold_dropped_unreleased_is_released_in_the_background() {
    let (settings, _topology) = unique_amqp_settings();
    let (a, b) = (
        BrokerLease::new(&settings, "it-a"),
        BrokerLease::new(&settings, "it-b"),
    );
    let script = script();
    drop(a.try_acquire(&script).await.unwrap().expect("free"));
    for _ in 0..100 {
        if let Some(hold) = b.try_acquire(&script).await.unwrap() {
            hold.release().await;
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the dropped hold was never released");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_ends_with_its_connection_and_the_fence_says_so() {
    let (settings, _topology) = unique_amqp_settings();
    let instance = format!("it-lease-{}", uuid::Uuid::new_v4().simple());
    let (a, b) = (
        BrokerLease::new(&settings, &instance),
        BrokerLease::new(&settings, "it-b"),
    );
    let script = script();
    let held = a.try_acquire(&script).await.unwrap().expect("free");
    force_close_connections_with(&[&instance, LEASE_CONNECTION_NAME]).await;
    // The broker deleted the queue with the connection: another takes it.
    let mut taken = None;
    for _ in 0..100 {
        taken = b.try_acquire(&script).await.unwrap();
        if taken.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let taken = taken.expect("the dead holder's lease was freed");
    assert!(
        matches!(held.check().await, Err(LeaseError::Lost { .. })),
        "the stale holder is fenced off"
    );
    held.release().await;
    taken
        .check()
        .await
        .expect("the new holder's lease is untouched");
    taken.release().await;
    // The first process connects again for its next lease.
    let next = a.try_acquire(&script).await.unwrap().expect("free again");
    next.release().await;
}
