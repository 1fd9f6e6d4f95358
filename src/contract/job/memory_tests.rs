//! What parsing a job body allocates, measured: the bound README's
//! contract rules promise (at most [`MAX_PARSE_FACTOR`] times the body,
//! which `amqp.max_job_bytes` caps) holds for the shapes that cost the most.
//!
//! The lib's test binary counts allocations with a global allocator of its
//! own, per thread (tests run in parallel threads), so a test can read the
//! peak of live bytes one call reached.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

/// The measured worst: an array of one-digit numbers, where each 2-byte
/// element becomes a 32-byte `Value` (16 times) in a vector whose capacity
/// doubles (32 times at the moment it grows).
const MAX_PARSE_FACTOR: usize = 33;

thread_local! {
    static LIVE: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
}

/// `System`, counting this thread's live bytes and their peak.
struct Meter;

fn track(delta: isize) {
    let _ = LIVE.try_with(|live| {
        let now = live.get() + delta;
        live.set(now);
        let _ = PEAK.try_with(|peak| peak.set(peak.get().max(now)));
    });
}

fn signed(n: usize) -> isize {
    isize::try_from(n).unwrap_or(isize::MAX)
}

// SAFETY: every call is passed to `System` unchanged; only counted.
unsafe impl GlobalAlloc for Meter {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract, passed on.
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            track(signed(layout.size()));
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract, passed on.
        unsafe { System.dealloc(ptr, layout) };
        track(-signed(layout.size()));
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller's contract, passed on.
        let moved = unsafe { System.realloc(ptr, layout, new_size) };
        if !moved.is_null() {
            track(signed(new_size) - signed(layout.size()));
        }
        moved
    }
}

#[global_allocator]
static METER: Meter = Meter;

/// The most bytes `f` had allocated at once, on this thread.
fn peak_of(f: impl FnOnce()) -> usize {
    let base = LIVE.with(Cell::get);
    PEAK.with(|peak| peak.set(base));
    f();
    usize::try_from(PEAK.with(Cell::get) - base).unwrap_or(0)
}

/// `item` repeated (comma-separated) in an array of about `bytes`.
fn array_of(item: &str, bytes: usize) -> String {
    let n = bytes / (item.len() + 1);
    format!("[{}{item}]", format!("{item},").repeat(n))
}

#[test]
fn parsing_a_body_allocates_at_most_a_known_multiple_of_its_size() {
    const BODY: usize = 1 << 20;
    let keys: String = (0..BODY / 10).map(|i| format!("\"{i:x}\":0,")).collect();
    let shapes = [
        ("numbers", array_of("0", BODY)),
        ("empty strings", array_of("\"\"", BODY)),
        ("short strings", array_of("\"a\"", BODY)),
        ("empty arrays", array_of("[]", BODY)),
        ("one-key objects", array_of("{\"a\":0}", BODY)),
        (
            "bindings",
            array_of("{\"type\":\"kv\",\"name\":\"B\"}", BODY),
        ),
        ("many keys", format!("{{{keys}\"z\":0}}")),
        (
            "one string",
            format!("{{\"namespace\":\"{}\"}}", "x".repeat(BODY)),
        ),
    ];
    for (shape, body) in shapes {
        let peak = peak_of(|| {
            let _ = super::decode_job(body.as_bytes());
        });
        assert!(
            peak <= MAX_PARSE_FACTOR * body.len(),
            "{shape}: {peak} bytes allocated for a body of {}",
            body.len()
        );
    }
}

#[test]
fn a_body_of_many_small_objects_stops_at_the_container_cap() {
    // Regression: `[{"a":0},...]` took 87 times its size (a map node per
    // object); the cap stops it after MAX_CONTAINERS of them.
    let body = array_of("{\"a\":0}", 1 << 20);
    let err = super::decode_job(body.as_bytes()).unwrap_err();
    assert!(
        err.message
            .starts_with("job: [9999]: more than 10000 objects and arrays in a job"),
        "{}",
        err.message
    );
}
