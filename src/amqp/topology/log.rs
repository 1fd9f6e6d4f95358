//! The events log: a stream queue bound to the events exchange with `#`, so
//! every event the worker publishes is kept (for `events.log_max_age`) and
//! a downstream system that was down can replay what it missed from an
//! offset or a time, however many read it. Streams are read, not consumed:
//! reading never removes an event.

use std::time::Duration;

use lapin::types::FieldTable;

use super::{Declaration, text};
use crate::config::AmqpSettings;

/// The events log's arguments: a stream, keeping events for `max_age`
/// (`x-max-age`, in the largest whole unit of days, hours, minutes or
/// seconds; below a second, a second).
pub fn events_log_arguments(max_age: Duration) -> FieldTable {
    let seconds = max_age.as_secs().max(1);
    let age = match seconds {
        s if s % 86_400 == 0 => format!("{}D", s / 86_400),
        s if s % 3600 == 0 => format!("{}h", s / 3600),
        s if s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    };
    let mut args = FieldTable::default();
    args.insert("x-queue-type".into(), text("stream"));
    args.insert("x-max-age".into(), text(&age));
    args
}

/// The events log, bound to the events exchange with `#`. The exchange is
/// among the contract's declarations, which come first.
pub fn events_log_declarations(settings: &AmqpSettings, max_age: Duration) -> Vec<Declaration> {
    let name = &settings.events_log_queue;
    vec![
        Declaration::queue(name, events_log_arguments(max_age)),
        Declaration::binding(name, &settings.events_exchange, "#"),
    ]
}

#[cfg(test)]
mod tests {
    use super::super::tests::get;
    use super::*;

    fn max_age(age: Duration) -> lapin::types::AMQPValue {
        get(&events_log_arguments(age), "x-max-age").clone()
    }

    #[test]
    fn the_events_log_is_a_stream_kept_for_its_max_age() {
        let args = events_log_arguments(Duration::from_secs(7 * 86_400));
        assert_eq!(args.inner().len(), 2);
        assert_eq!(get(&args, "x-queue-type"), &text("stream"));
        assert_eq!(get(&args, "x-max-age"), &text("7D"));
        assert_eq!(max_age(Duration::from_secs(7200)), text("2h"));
        assert_eq!(max_age(Duration::from_secs(90 * 60)), text("90m"));
        assert_eq!(max_age(Duration::from_secs(61)), text("61s"));
        assert_eq!(max_age(Duration::from_millis(10)), text("1s"));
    }
}
