#!/usr/bin/env python3
"""Publish a deploy job to wfp-deployer (contract v1) with pika.

The job is validated against contract/job.schema.json first, so a broken job
is refused here, naming the field, instead of coming back as an invalid_job
event. It is published persistent, as application/json, with publisher
confirms and `mandatory`, so a job the broker did not take is an error.

    AMQP_URL=amqp://guest:guest@127.0.0.1:5672/%2f python3 producer.py job.json

Environment: AMQP_URL, WFP_JOBS_EXCHANGE (default wfp.deploy),
WFP_JOBS_ROUTING_KEY (default deploy), WFP_JOB_SCHEMA (default: the
repository's contract/job.schema.json).
"""

import json
import os
import pathlib
import sys

import jsonschema
import pika

HERE = pathlib.Path(__file__).resolve().parent
DEFAULT_SCHEMA = HERE.parent.parent / "contract" / "job.schema.json"


def validate(job: dict) -> None:
    """Raise SystemExit naming every rule the job breaks."""
    schema = json.loads(pathlib.Path(os.environ.get("WFP_JOB_SCHEMA", DEFAULT_SCHEMA)).read_text())
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(job), key=lambda e: list(e.path))
    if errors:
        lines = [f"  {'.'.join(map(str, e.path)) or '(job)'}: {e.message}" for e in errors]
        raise SystemExit("job breaks the contract:\n" + "\n".join(lines))


def publish(job: dict) -> None:
    params = pika.URLParameters(os.environ.get("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2f"))
    connection = pika.BlockingConnection(params)
    try:
        channel = connection.channel()
        channel.confirm_delivery()
        properties = pika.BasicProperties(
            content_type="application/json",
            delivery_mode=pika.DeliveryMode.Persistent,
            message_id=job["job_id"],
            correlation_id=job.get("correlation_id"),
        )
        # Raises UnroutableError / NackError if the broker did not take it.
        channel.basic_publish(
            exchange=os.environ.get("WFP_JOBS_EXCHANGE", "wfp.deploy"),
            routing_key=os.environ.get("WFP_JOBS_ROUTING_KEY", "deploy"),
            body=json.dumps(job).encode(),
            properties=properties,
            mandatory=True,
        )
    finally:
        connection.close()


def main() -> None:
    if len(sys.argv) != 2:
        raise SystemExit(f"usage: {sys.argv[0]} JOB.json")
    job = json.loads(pathlib.Path(sys.argv[1]).read_text())
    validate(job)
    publish(job)
    print(f"published {job['job_id']}", file=sys.stderr)


if __name__ == "__main__":
    main()
