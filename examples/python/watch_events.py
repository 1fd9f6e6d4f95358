#!/usr/bin/env python3
"""Watch wfp-deployer's events (CloudEvents on a topic exchange) with pika.

Binds a private queue to the events exchange and prints each event as one
JSON line. With --job-id, prints only that job's events and exits at its
terminal event: 0 for wfp.deploy.succeeded, 1 for wfp.deploy.failed, 2 on
timeout. Events are checked against contract/event.schema.json.

    python3 watch_events.py --job-id acme-site-42 --timeout 120

Environment: AMQP_URL, WFP_EVENTS_EXCHANGE (default wfp.deploy.events),
WFP_EVENT_SCHEMA (default: the repository's contract/event.schema.json).
"""

import argparse
import json
import os
import pathlib
import sys
import time

import jsonschema
import pika

HERE = pathlib.Path(__file__).resolve().parent
DEFAULT_SCHEMA = HERE.parent.parent / "contract" / "event.schema.json"
TERMINAL = {"wfp.deploy.succeeded": 0, "wfp.deploy.failed": 1}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--job-id", help="only this job's events; exit at its terminal event")
    parser.add_argument("--routing-key", default="deploy.#", help="binding key (default deploy.#)")
    parser.add_argument("--timeout", type=float, default=300, help="seconds to wait with --job-id")
    args = parser.parse_args()

    schema = json.loads(pathlib.Path(os.environ.get("WFP_EVENT_SCHEMA", DEFAULT_SCHEMA)).read_text())
    validator = jsonschema.Draft202012Validator(schema)
    params = pika.URLParameters(os.environ.get("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2f"))
    connection = pika.BlockingConnection(params)
    channel = connection.channel()
    queue = channel.queue_declare(queue="", exclusive=True).method.queue
    exchange = os.environ.get("WFP_EVENTS_EXCHANGE", "wfp.deploy.events")
    channel.queue_bind(queue=queue, exchange=exchange, routing_key=args.routing_key)
    # Bound: from here on no event is missed. Tools driving this script wait for this line.
    print(f"watching {exchange} {args.routing_key}", file=sys.stderr, flush=True)

    deadline = time.monotonic() + args.timeout
    try:
        for method, properties, body in channel.consume(queue, inactivity_timeout=1):
            if method is None:
                if args.job_id and time.monotonic() > deadline:
                    print(f"no terminal event for {args.job_id} within {args.timeout}s", file=sys.stderr)
                    return 2
                continue
            channel.basic_ack(method.delivery_tag)
            event = json.loads(body)
            for error in validator.iter_errors(event):
                print(f"event {event.get('id')} breaks the contract: {error.message}", file=sys.stderr)
            # Headers carry job_id, namespace and script_name: filter without parsing bodies.
            job_id = (properties.headers or {}).get("job_id")
            if args.job_id and job_id != args.job_id:
                continue
            print(json.dumps(event), flush=True)
            if args.job_id and event["type"] in TERMINAL:
                return TERMINAL[event["type"]]
    finally:
        connection.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
