//! `deploy/kubernetes/` against the code and against itself: the
//! Deployment's probes, ports, environment, security and volumes; the
//! ConfigMap is `config/default.toml`; every Secret key used exists; KEDA
//! scales on the real jobs queue over the management API.

use serde_json::Value;

use super::{
    HEALTHZ, METRICS, READYZ, check_container_listen, check_env, ops_port, setting, setting_seconds,
};
use crate::helpers::files::{read, yaml, yaml_documents};

/// The container user of the image and the pods.
pub const UID: u64 = 10001;

/// Every Kubernetes object under deploy/kubernetes, with its file.
fn objects() -> Vec<(String, Value)> {
    crate::helpers::files::files_under("deploy/kubernetes", &[".yaml"])
        .into_iter()
        .flat_map(|file| {
            yaml_documents(&file)
                .into_iter()
                .map(move |doc| (file.clone(), doc))
        })
        .collect()
}

/// The one object of `kind`.
fn object(kind: &str) -> Value {
    let found: Vec<Value> = objects()
        .into_iter()
        .filter(|(_, o)| o["kind"] == kind)
        .map(|(_, o)| o)
        .collect();
    assert_eq!(found.len(), 1, "one {kind} expected");
    found.into_iter().next().unwrap()
}

fn container() -> Value {
    let deployment = object("Deployment");
    let containers = deployment["spec"]["template"]["spec"]["containers"].clone();
    assert_eq!(containers.as_array().map(Vec::len), Some(1));
    containers[0].clone()
}

/// The container's environment, as the pod spec gives it.
struct ContainerEnv {
    /// Variables with a literal value.
    literal: Vec<(String, String)>,
    /// Variables fed from a Secret, by name.
    from_secrets: Vec<String>,
    /// The (Secret, key) pairs they read.
    secret_keys: Vec<(String, String)>,
}

fn container_env() -> ContainerEnv {
    let mut env = ContainerEnv {
        literal: Vec::new(),
        from_secrets: Vec::new(),
        secret_keys: Vec::new(),
    };
    for var in container()["env"].as_array().expect("env") {
        let name = var["name"].as_str().unwrap().to_string();
        if let Some(value) = var["value"].as_str() {
            env.literal.push((name, value.to_string()));
        } else if let Some(key) = var["valueFrom"]["secretKeyRef"].as_object() {
            let secret = key["name"].as_str().unwrap().to_string();
            env.secret_keys
                .push((secret, key["key"].as_str().unwrap().to_string()));
            env.from_secrets.push(name);
        }
    }
    env
}

fn env_value(name: &str) -> Option<String> {
    container_env()
        .literal
        .into_iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
}

/// `128Mi`, `9Gi` in bytes.
fn quantity(text: &str) -> u64 {
    let units = [
        ("Ki", 1u64 << 10),
        ("Mi", 1 << 20),
        ("Gi", 1 << 30),
        ("Ti", 1 << 40),
    ];
    for (suffix, factor) in units {
        if let Some(n) = text.strip_suffix(suffix) {
            return n.parse::<u64>().expect("a number") * factor;
        }
    }
    text.parse().expect("a quantity")
}

#[test]
fn the_deployment_env_names_real_settings_and_variables() {
    const FILE: &str = "deploy/kubernetes/deployment.yaml";
    let env = container_env();
    check_env(FILE, &env.literal);
    check_container_listen(FILE, &env.literal);
    // Secret-fed variables: checked by name (their values live elsewhere).
    let known = super::known_plain_env();
    for name in env.from_secrets {
        assert!(known.contains(&name), "{FILE}: {name} is read by nothing");
    }
}

#[test]
fn probes_ports_and_scraping_use_the_ops_server() {
    let c = container();
    let port = &c["ports"][0];
    assert_eq!(port["name"], "ops");
    assert_eq!(port["containerPort"], ops_port());
    assert_eq!(
        c["readinessProbe"]["httpGet"]["path"], READYZ,
        "readiness is /readyz"
    );
    assert_eq!(
        c["livenessProbe"]["httpGet"]["path"], HEALTHZ,
        "liveness is /healthz"
    );
    for probe in ["readinessProbe", "livenessProbe"] {
        assert_eq!(c[probe]["httpGet"]["port"], "ops", "{probe}");
    }
    let annotations = &object("Deployment")["spec"]["template"]["metadata"]["annotations"];
    assert_eq!(annotations["prometheus.io/scrape"], "true");
    assert_eq!(annotations["prometheus.io/port"], ops_port().to_string());
    assert_eq!(annotations["prometheus.io/path"], METRICS);
    let monitor = object("PodMonitor");
    assert_eq!(monitor["spec"]["podMetricsEndpoints"][0]["port"], "ops");
    assert_eq!(monitor["spec"]["podMetricsEndpoints"][0]["path"], METRICS);
}

#[test]
fn shutdown_security_and_resources() {
    let deployment = object("Deployment");
    let pod = &deployment["spec"]["template"]["spec"];
    let grace = pod["terminationGracePeriodSeconds"]
        .as_u64()
        .expect("a grace period");
    assert!(
        grace > setting_seconds("worker.shutdown_grace") + 5,
        "terminationGracePeriodSeconds {grace} must leave room after worker.shutdown_grace"
    );
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(pod["securityContext"]["runAsUser"], UID);
    let c = container();
    assert_eq!(c["securityContext"]["readOnlyRootFilesystem"], true);
    assert_eq!(c["securityContext"]["allowPrivilegeEscalation"], false);
    assert_eq!(c["securityContext"]["capabilities"]["drop"][0], "ALL");

    // Memory from the README's benchmark (one deploy's peak RSS): the
    // request holds three such peaks, as worker.concurrency deploys share
    // one runtime; the limit is at least the request.
    let readme = read("README.md");
    let bench = &readme[readme.find("## Benchmarks").expect("a benchmarks section")..];
    // The table's "peak RSS" column, wherever it stands.
    let header = bench
        .lines()
        .find(|l| l.starts_with('|') && l.split('|').any(|cell| cell.trim() == "peak RSS"))
        .expect("a benchmark table with a peak RSS column");
    let column = header
        .split('|')
        .position(|cell| cell.trim() == "peak RSS")
        .expect("a peak RSS column");
    let peak_mib = bench
        .lines()
        .filter(|l| l.starts_with('|'))
        .filter_map(|l| {
            // "36 MiB PASS": the number before "MiB".
            let mut words = l.split('|').nth(column)?.split_whitespace();
            let number = words.next()?.parse::<f64>().ok()?;
            (words.next()? == "MiB").then_some(number)
        })
        .map(|mib| mib.ceil() as u64)
        .max()
        .expect("peak RSS figures in README's benchmark table");
    let request = quantity(c["resources"]["requests"]["memory"].as_str().unwrap());
    let limit = quantity(c["resources"]["limits"]["memory"].as_str().unwrap());
    assert!(
        request >= (3 * peak_mib) << 20,
        "request {request} vs peak {peak_mib} MiB"
    );
    assert!(limit >= request);

    // The spool: where the settings put it, on a volume big enough for
    // worker.concurrency bundles of limits.max_total_bytes.
    let mount = |name: &str| {
        c["volumeMounts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["name"] == name)
            .unwrap_or_else(|| panic!("no {name} mount"))
            .clone()
    };
    assert_eq!(
        mount("spool")["mountPath"],
        env_value("WFP__WORKER__SPOOL_DIR").unwrap().as_str()
    );
    assert_eq!(
        mount("config")["mountPath"],
        env_value("WFP_CONFIG_DIR").unwrap().as_str()
    );
    let volume = |name: &str| {
        pod["volumes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["name"] == name)
            .unwrap()
            .clone()
    };
    let concurrency: u64 = env_value("WFP__WORKER__CONCURRENCY")
        .unwrap_or_else(|| setting("worker.concurrency"))
        .parse()
        .unwrap();
    let max_total: u64 = setting("limits.max_total_bytes").parse().unwrap();
    let size = quantity(volume("spool")["emptyDir"]["sizeLimit"].as_str().unwrap());
    assert!(
        size >= concurrency * max_total,
        "spool {size} < {concurrency} x {max_total}"
    );
    assert_eq!(
        volume("config")["configMap"]["name"],
        object("ConfigMap")["metadata"]["name"]
    );
}

#[test]
fn the_configmap_is_config_default_toml() {
    assert!(
        object("ConfigMap")["data"]["default.toml"] == read("config/default.toml"),
        "deploy/kubernetes/configmap.yaml differs from config/default.toml: run `make deploy-configmap`"
    );
}

#[test]
fn secret_keys_used_exist_in_the_example_secret() {
    let example = yaml("deploy/kubernetes/secret.example.yaml");
    let name = example["metadata"]["name"].as_str().unwrap().to_string();
    let keys = example["stringData"].as_object().unwrap();
    let used = container_env().secret_keys;
    let auth = object("TriggerAuthentication");
    let from_keda = auth["spec"]["secretTargetRef"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["name"].as_str().unwrap().to_string(),
                r["key"].as_str().unwrap().to_string(),
            )
        });
    for (secret, key) in used.into_iter().chain(from_keda) {
        assert_eq!(secret, name, "{key}: another secret");
        assert!(
            keys.contains_key(&key),
            "{key} missing from secret.example.yaml"
        );
    }
}

#[test]
fn keda_scales_on_the_jobs_queue_over_the_management_api() {
    let scaled = object("ScaledObject");
    let deployment = object("Deployment");
    assert_eq!(
        scaled["spec"]["scaleTargetRef"]["name"],
        deployment["metadata"]["name"]
    );
    let trigger = &scaled["spec"]["triggers"][0];
    assert_eq!(trigger["type"], "rabbitmq");
    let meta = &trigger["metadata"];
    // Over AMQP KEDA sees ready jobs only and scales down mid-deploy.
    assert_eq!(meta["protocol"], "http");
    assert_eq!(meta["mode"], "QueueLength");
    assert_eq!(meta["excludeUnacknowledged"], "false");
    assert_eq!(meta["queueName"], setting("amqp.jobs_queue").as_str());
    let concurrency =
        env_value("WFP__WORKER__CONCURRENCY").unwrap_or_else(|| setting("worker.concurrency"));
    assert_eq!(
        meta["value"],
        concurrency.as_str(),
        "one replica per worker.concurrency jobs"
    );
    assert_eq!(
        trigger["authenticationRef"]["name"],
        object("TriggerAuthentication")["metadata"]["name"]
    );
    let auth = object("TriggerAuthentication");
    assert_eq!(auth["spec"]["secretTargetRef"][0]["parameter"], "host");
    assert_eq!(
        auth["spec"]["secretTargetRef"][0]["key"],
        "RABBITMQ_MANAGEMENT_URL"
    );

    // The disruption budget and the monitor select the Deployment's pods.
    let labels = &deployment["spec"]["template"]["metadata"]["labels"];
    assert_eq!(&deployment["spec"]["selector"]["matchLabels"], labels);
    assert_eq!(
        &object("PodDisruptionBudget")["spec"]["selector"]["matchLabels"],
        labels
    );
    assert_eq!(
        &object("PodMonitor")["spec"]["selector"]["matchLabels"],
        labels
    );
}
