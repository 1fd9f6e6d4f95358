//! `enqueue`: jobs built from flags or read from a file, published with
//! confirms; `--wait` follows the job to its outcome.
