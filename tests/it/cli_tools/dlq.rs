//! `dlq`: parked jobs listed, shown, requeued and purged, with nothing lost.
