//! One deploy of a script at a time, within this process.
//!
//! Two jobs for the same script (a quick second build, or a redelivery after
//! a reconnect while the first run still finishes) would otherwise race, and
//! whichever PUT lands last wins, possibly the older build. Deploys of one
//! script queue up here in arrival order; different scripts never wait for
//! each other. Across processes the script's lease (`order/`) takes over;
//! these locks come first, so this process's jobs take that lease one at a
//! time and in arrival order.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::{Mutex as AsyncMutex, OwnedMutexGuard};

use crate::cloudflare::ScriptTarget;

type Key = (String, String, String);

/// The per-script locks; entries go away when nobody holds or awaits them.
#[derive(Default)]
pub(super) struct ScriptLocks {
    locks: Mutex<HashMap<Key, Arc<AsyncMutex<()>>>>,
}

/// Held for the length of one deploy.
pub(super) struct ScriptGuard<'a> {
    owner: &'a ScriptLocks,
    key: Key,
    guard: Option<OwnedMutexGuard<()>>,
}

impl ScriptLocks {
    /// Waits until no other deploy of `target` runs here.
    pub(super) async fn lock(&self, target: &ScriptTarget) -> ScriptGuard<'_> {
        let key = (
            target.account_id.clone(),
            target.namespace.clone(),
            target.script_name.clone(),
        );
        let lock = {
            let mut locks = self.locks.lock().unwrap_or_else(|e| e.into_inner());
            locks.entry(key.clone()).or_default().clone()
        };
        ScriptGuard {
            owner: self,
            key,
            guard: Some(lock.lock_owned().await),
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.locks.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

impl Drop for ScriptGuard<'_> {
    fn drop(&mut self) {
        drop(self.guard.take());
        let mut locks = self.owner.locks.lock().unwrap_or_else(|e| e.into_inner());
        // Only this map holds the Arc once no one has or awaits the lock.
        if locks
            .get(&self.key)
            .is_some_and(|l| Arc::strong_count(l) == 1)
        {
            locks.remove(&self.key);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn target(script: &str) -> ScriptTarget {
        ScriptTarget {
            account_id: "a".into(),
            namespace: "n".into(),
            script_name: script.into(),
        }
    }

    #[tokio::test]
    async fn one_script_waits_others_do_not() {
        let locks = ScriptLocks::default();
        let first = locks.lock(&target("s")).await;
        let other = tokio::time::timeout(Duration::from_secs(1), locks.lock(&target("t"))).await;
        assert!(other.is_ok(), "another script does not wait");
        let same = tokio::time::timeout(Duration::from_millis(50), locks.lock(&target("s"))).await;
        assert!(same.is_err(), "the same script waits");
        drop(other);
        drop(first);
        let again = tokio::time::timeout(Duration::from_secs(1), locks.lock(&target("s"))).await;
        assert!(again.is_ok(), "free once the first deploy ended");
        drop(again);
        assert_eq!(locks.len(), 0, "no entry left behind");
    }
}
