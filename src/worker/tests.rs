//! The broker decision, the attempt and the delivery handling rules.
use super::*;
use crate::amqp::PublishError;
use crate::amqp::publisher::Target;

fn failure(retryable: bool) -> Result<Success, FailureInfo> {
    Err(FailureInfo {
        code: ErrorCode::CloudflareUnavailable,
        message: "x".into(),
        step: Step::Upload,
        retryable,
    })
}

fn not_confirmed() -> Result<(), EventError> {
    Err(EventError::Publish {
        id: "j:failed".into(),
        error: Box::new(PublishError::Nacked {
            target: Target {
                exchange: "e".into(),
                routing_key: "deploy.failed".into(),
            },
        }),
    })
}

#[test]
fn a_confirmed_terminal_event_acks_whatever_the_outcome() {
    assert_eq!(
        disposition(Some(&failure(false)), &Ok(())),
        Disposition::Ack
    );
    assert_eq!(disposition(Some(&failure(true)), &Ok(())), Disposition::Ack);
}

#[test]
fn an_unconfirmed_event_requeues() {
    assert_eq!(
        disposition(Some(&failure(false)), &not_confirmed()),
        Disposition::Requeue
    );
    assert_eq!(disposition(None, &not_confirmed()), Disposition::Requeue);
}

#[test]
fn a_job_that_never_ran_is_never_acked() {
    assert_eq!(disposition(None, &Ok(())), Disposition::Requeue);
}
