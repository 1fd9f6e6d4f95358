//! Contract v1: the wire types other teams code against.
//!
//! Everything here is plain serde: no AMQP, no HTTP. Changing a field name or
//! a value here breaks producers and event consumers in other teams, so the
//! tests in each file pin the exact JSON.

mod error;
mod event;
mod job;
pub mod names;
mod progress;
pub mod quote;
mod schema;

pub use error::{ErrorCode, FailureInfo, MAX_ERROR_MESSAGE_BYTES, Step};
pub use event::{
    CloudEvent, DeploymentInfo, EventData, EventKind, JobFields, ManifestSummary, Success,
    UploadSummary,
};
pub use job::{
    AssetsConfig, BundleArchive, BundlePrefix, BundleRef, DeployJob, InvalidJob, RunWorkerFirst,
    WorkerCode, decode_job,
};
pub use progress::ProgressData;
pub use schema::ContractSchema;

/// The only job `version` this worker understands.
pub const JOB_VERSION: u32 = 1;
