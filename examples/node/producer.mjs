#!/usr/bin/env node
// Publish a deploy job to wfp-deployer (contract v1) with amqplib, and wait
// for its terminal event on a private reply queue (the job's `reply_to`).
//
// The job is validated against contract/job.schema.json first (Ajv, JSON
// Schema 2020-12), so a broken job is refused here, naming the field. It is
// published persistent, as application/json, on a confirm channel with
// `mandatory`, so a job the broker did not take is an error.
//
//   AMQP_URL=amqp://guest:guest@127.0.0.1:5672/%2f node producer.mjs job.json
//
// Exit status: 0 deploy.succeeded, 1 deploy.failed or an error, 2 timeout.
// Environment: AMQP_URL, WFP_JOBS_EXCHANGE (default wfp.deploy),
// WFP_JOBS_ROUTING_KEY (default deploy), WFP_JOB_SCHEMA, WFP_WAIT_SECONDS
// (default 300).

import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import amqp from "amqplib";
import Ajv2020 from "ajv/dist/2020.js";

const here = fileURLToPath(new URL(".", import.meta.url));
const schemaPath = process.env.WFP_JOB_SCHEMA ?? `${here}../../contract/job.schema.json`;

function validate(job) {
  // Formats are annotations in 2020-12 (schemars writes uint32 and the like).
  const ajv = new Ajv2020({ allErrors: true, validateFormats: false });
  const check = ajv.compile(JSON.parse(readFileSync(schemaPath, "utf8")));
  if (!check(job)) {
    const lines = check.errors.map((e) => `  ${e.instancePath || "(job)"}: ${e.message}`);
    throw new Error(`job breaks the contract:\n${lines.join("\n")}`);
  }
}

async function main() {
  const [file] = process.argv.slice(2);
  if (!file) throw new Error("usage: producer.mjs JOB.json");
  const job = JSON.parse(readFileSync(file, "utf8"));
  validate(job);

  const connection = await amqp.connect(process.env.AMQP_URL ?? "amqp://guest:guest@127.0.0.1:5672/%2f");
  try {
    const channel = await connection.createConfirmChannel();
    // A private queue for the terminal event: the worker copies it there.
    const { queue: replyTo } = await channel.assertQueue("", { exclusive: true });
    const terminal = new Promise((resolve) => {
      channel.consume(replyTo, (msg) => resolve(JSON.parse(msg.content.toString())), { noAck: true });
    });
    // A mandatory message no queue takes comes back before its confirm.
    let returned = false;
    channel.on("return", () => { returned = true; });
    channel.publish(
      process.env.WFP_JOBS_EXCHANGE ?? "wfp.deploy",
      process.env.WFP_JOBS_ROUTING_KEY ?? "deploy",
      Buffer.from(JSON.stringify(job)),
      {
        contentType: "application/json",
        persistent: true,
        mandatory: true,
        messageId: job.job_id,
        correlationId: job.correlation_id,
        replyTo,
      },
    );
    await channel.waitForConfirms();
    if (returned) throw new Error("the broker routed the job to no queue");
    console.error(`published ${job.job_id}; waiting for its outcome`);

    const seconds = Number(process.env.WFP_WAIT_SECONDS ?? 300);
    let timer;
    const timeout = new Promise((resolve) => { timer = setTimeout(() => resolve(null), seconds * 1000); });
    const event = await Promise.race([terminal, timeout]);
    clearTimeout(timer);
    if (event === null) {
      console.error(`no outcome for ${job.job_id} within ${seconds}s`);
      return 2;
    }
    console.log(JSON.stringify(event));
    return event.type === "wfp.deploy.succeeded" ? 0 : 1;
  } finally {
    await connection.close();
  }
}

main().then(
  (code) => process.exit(code),
  (error) => { console.error(`producer: ${error.message}`); process.exit(1); },
);
