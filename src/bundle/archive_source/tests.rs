//! Archive sources read from local files (the S3 ones are tested end to
//! end in `tests/it/bundles`): the whole read, the gate, the special files,
//! a second pass that spools only what it is asked for, and the refusals.
