//! An error and its causes on one line, for the detail of a lower error.
//!
//! Client libraries (the AWS SDK, reqwest, hyper) wrap one cause in several
//! layers, and a layer's message often repeats its cause's. Where such an
//! error becomes the detail of one of ours, it is flattened here, once, the
//! same way for every client: each cause is added unless the line already
//! says it.

use std::error::Error;

/// `err` and its sources, `: `-separated, repeats dropped.
pub fn flatten(err: &(dyn Error + 'static)) -> String {
    flatten_with(err, |e| e.to_string())
}

/// Like [`flatten`], with each error of the chain rendered by `render`: a
/// client whose messages carry something the line must not (reqwest's URL)
/// renders those errors its own way.
pub fn flatten_with(
    err: &(dyn Error + 'static),
    render: impl Fn(&(dyn Error + 'static)) -> String,
) -> String {
    let mut line = String::new();
    let mut next = Some(err);
    while let Some(e) = next {
        let text = render(e);
        if !line.contains(&text) {
            if !line.is_empty() {
                line.push_str(": ");
            }
            line.push_str(&text);
        }
        next = e.source();
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A layer with a message and, perhaps, a cause.
    #[derive(Debug)]
    struct Layer(&'static str, Option<Box<Layer>>);

    impl std::fmt::Display for Layer {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.0)
        }
    }

    impl Error for Layer {
        fn source(&self) -> Option<&(dyn Error + 'static)> {
            self.1.as_deref().map(|e| e as &(dyn Error + 'static))
        }
    }

    fn chain(messages: &[&'static str]) -> Layer {
        messages
            .iter()
            .rev()
            .fold(None, |cause, m| Some(Layer(m, cause.map(Box::new))))
            .expect("at least one message")
    }

    #[test]
    fn each_cause_appears_once() {
        let err = chain(&[
            "dispatch failure",
            "io error: connection refused",
            "connection refused",
        ]);
        assert_eq!(
            flatten(&err),
            "dispatch failure: io error: connection refused"
        );
        assert_eq!(flatten(&chain(&["timed out"])), "timed out");
    }

    #[test]
    fn a_layer_that_repeats_its_cause_is_not_doubled() {
        let err = chain(&[
            "error sending request: connection reset",
            "connection reset",
        ]);
        assert_eq!(flatten(&err), "error sending request: connection reset");
    }

    #[test]
    fn each_layer_can_be_rendered_its_own_way() {
        let err = chain(&["request failed for url (http://x/)", "refused"]);
        let line = flatten_with(&err, |e| {
            let text = e.to_string();
            text.split(" for url (")
                .next()
                .unwrap_or_default()
                .to_string()
        });
        assert_eq!(line, "request failed: refused");
    }
}
