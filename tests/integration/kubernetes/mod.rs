//! The Kubernetes example in `examples/kubernetes/` against wsp itself, without kubectl
//! (CI has none): the manifests are parsed here and the links between them checked (the
//! names, labels, ports and paths a typo would break, the time-outs that must outlast
//! wsp's drain), the two configuration files are loaded by wsp's own loaders, and each
//! container's command is run as written, with only the mounted paths swapped for the
//! test's: the server must answer the probe, and the client register to it.

pub mod manifests;

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use serde_json::{json, Value};

use crate::config::ConfigFile;
use crate::support::*;
use manifests::*;

/// How long CoreDNS, as kubeadm sets it up (`ttl 30`, `cache 30`), may go on answering
/// with the pod addresses it had before a new server pod appeared.
const DNS_CACHE_SECS: u64 = 30;

/// The cluster's DNS domain the example assumes (the kubelet's default).
const CLUSTER_DOMAIN: &str = "cluster.local";

/// The client's id in the test: a name as a Deployment gives its pods.
const POD_NAME: &str = "wsp-client-7d9f8c6b5-x2x4q";

/// Whole seconds, rounded up.
fn seconds(duration: Duration) -> u64 {
    duration.as_millis().div_ceil(1000) as u64
}

#[test]
fn kustomizations_list_every_manifest_and_configuration_file() {
    fn check(dir: &Path) {
        let kustomization = kustomization(dir.to_str().expect("a UTF-8 path"));
        let mut listed: BTreeSet<String> =
            files(&kustomization, "/resources").into_iter().collect();
        for generators in ["/configMapGenerator", "/secretGenerator"] {
            for generator in list(&kustomization, generators) {
                listed.extend(files(generator, "/files"));
            }
        }
        let mut present = BTreeSet::new();
        for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{dir:?}: {e}")) {
            let path = entry.expect("a directory entry").path();
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .expect("a UTF-8 name");
            let manifest = [".yaml", ".yml", ".cfg"].iter().any(|e| name.ends_with(e));
            if path.is_dir() {
                check(&path);
            } else if manifest && name != "kustomization.yaml" {
                present.insert(name.to_string());
            }
        }
        assert_eq!(listed, present, "{}/kustomization.yaml", dir.display());
    }
    check(Path::new(DIR));
}

#[test]
fn services_reach_the_server_pods_on_the_configured_port() {
    let example = Example::load();
    let (server, client) = (example.server(), example.client());
    let port = u64::from(example.server.port);
    assert!(selects(at(server, "/spec/selector/matchLabels"), server));
    let pdb = example.find("PodDisruptionBudget", "wsp-server");
    assert!(selects(at(pdb, "/spec/selector/matchLabels"), server));

    let headless = example.headless();
    assert_eq!(string(headless, "/spec/clusterIP"), "None");
    // The clients must find a new pod before callers are sent to it.
    assert_eq!(at(headless, "/spec/publishNotReadyAddresses"), true);
    let callers = example.callers_service();
    assert!(callers
        .pointer("/spec/clusterIP")
        .is_none_or(|ip| ip != "None"));
    for service in [headless, callers] {
        let name = string(service, "/metadata/name");
        let selector = at(service, "/spec/selector");
        assert!(selects(selector, server), "{name} selects no server");
        assert!(!selects(selector, client), "{name} selects the clients");
        for p in list(service, "/spec/ports") {
            let target = p.get("targetPort").unwrap_or(&p["port"]);
            assert_eq!(container_port(container(server), target), port, "{name}");
        }
    }
    // A headless Service forwards nothing: the clients dial its port on the pods.
    assert_eq!(number(headless, "/spec/ports/0/port"), port);
}

#[test]
fn probes_ask_the_server_port_for_status_and_wait_for_the_clients() {
    let example = Example::load();
    let server = container(example.server());
    let port = u64::from(example.server.port);
    for probe in ["/readinessProbe", "/livenessProbe"] {
        let request = at(server, &format!("{probe}/httpGet"));
        assert_eq!(string(request, "/path"), "/status", "{probe}");
        let probed = container_port(server, at(request, "/port"));
        assert_eq!(probed, port, "{probe}");
    }
    // After SIGTERM the server stops listening: liveness must not cut its drain short.
    let liveness = at(server, "/livenessProbe");
    let failing = number(liveness, "/periodSeconds") * number(liveness, "/failureThreshold");
    let drain = seconds(example.server.shutdown_timeout);
    assert!(
        failing > drain,
        "liveness fails after {failing} s, drain {drain} s"
    );
    // Callers come once the clients could have found the new pod and registered to it.
    let delay = number(server, "/readinessProbe/initialDelaySeconds");
    let found = DNS_CACHE_SECS + seconds(example.client.resolve_interval);
    assert!(
        delay > found,
        "ready after {delay} s, clients there after {found} s"
    );
}

#[test]
fn pods_outlast_the_graceful_drain() {
    let example = Example::load();
    let server = example.server();
    let pause = number(container(server), "/lifecycle/preStop/sleep/seconds");
    let drain = pause + seconds(example.server.shutdown_timeout);
    let grace = number(server, "/spec/template/spec/terminationGracePeriodSeconds");
    assert!(
        grace > drain,
        "server: {grace} s to stop, {drain} s of drain"
    );
    let client = example.client();
    let drain = seconds(example.client.shutdown_timeout);
    let grace = number(client, "/spec/template/spec/terminationGracePeriodSeconds");
    assert!(
        grace > drain,
        "client: {grace} s to stop, {drain} s of drain"
    );
}

#[test]
fn the_client_registers_through_the_headless_service() {
    let example = Example::load();
    example.find("Namespace", &example.namespace);
    let headless = example.headless();
    let name = string(headless, "/metadata/name");
    let host = format!("{name}.{}.svc.{CLUSTER_DOMAIN}", example.namespace);

    let [target] = example.client.targets.as_slice() else {
        panic!("expected one target: {:?}", example.client.targets);
    };
    let url = url::Url::parse(target).expect("the target is a URL");
    assert_eq!(url.scheme(), "ws", "{target}");
    assert_eq!(url.host_str(), Some(host.as_str()), "{target}");
    let port = url.port().map(u64::from);
    assert_eq!(
        port,
        Some(number(headless, "/spec/ports/0/port")),
        "{target}"
    );
    assert_eq!(url.path(), "/register", "{target}");

    // Replicas sharing an id would share one pool on the servers: each has its own.
    let client = example.client();
    if number(client, "/spec/replicas") > 1 {
        assert!(
            example.client_yaml.get("id").is_none(),
            "id in wsp_client.cfg"
        );
        assert_eq!(argument(container(client), "--id"), "$(POD_NAME)");
        let mut env = list(container(client), "/env");
        let pod_name = env.find(|e| e["name"] == "POD_NAME").expect("POD_NAME");
        let field = string(pod_name, "/valueFrom/fieldRef/fieldPath");
        assert_eq!(field, "metadata.name");
    }
}

#[test]
fn each_side_reads_its_file_and_both_the_same_secret() {
    let example = Example::load();
    let kustomization = kustomization(DIR);
    let mut secrets = Vec::new();
    for side in ["wsp_server", "wsp_client"] {
        let deployment = example.find("Deployment", &side.replace('_', "-"));
        let container = container(deployment);
        let file = format!("{side}.cfg");
        let (kind, name, key) = mounted(deployment, argument(container, "-config"));
        assert_eq!((kind.as_str(), key.as_str()), ("configMap", file.as_str()));
        let mut generators = list(&kustomization, "/configMapGenerator");
        let generator = generators.find(|g| g["name"] == name.as_str());
        let generated = files(generator.expect("a generated ConfigMap"), "/files");
        assert_eq!(generated, std::slice::from_ref(&file), "{name}");
        // The key comes from the Secret, never from the file.
        let text = yaml(&read(&cfg(side)));
        assert!(text.get("secretkey").is_none() && text.get("secretkeyfile").is_none());
        let (kind, name, key) = mounted(deployment, argument(container, "--secret-key-file"));
        assert_eq!(kind, "secret", "{side}");
        secrets.push((name, key));
    }
    assert_eq!(
        secrets[0], secrets[1],
        "server and client read the same key"
    );
}

#[test]
fn pods_run_unprivileged_and_bounded() {
    let example = Example::load();
    for deployment in [example.server(), example.client()] {
        let name = string(deployment, "/metadata/name");
        let pod = at(deployment, "/spec/template/spec");
        assert_eq!(at(pod, "/securityContext/runAsNonRoot"), true, "{name}");
        assert_eq!(at(pod, "/automountServiceAccountToken"), false, "{name}");
        let container = container(deployment);
        let context = at(container, "/securityContext");
        assert_eq!(at(context, "/allowPrivilegeEscalation"), false, "{name}");
        assert_eq!(at(context, "/readOnlyRootFilesystem"), true, "{name}");
        assert_eq!(at(context, "/capabilities/drop"), &json!(["ALL"]), "{name}");
        string(container, "/resources/limits/memory");
        string(container, "/resources/requests/memory");
    }
}

#[test]
fn the_ingress_waits_longer_than_wsp() {
    let example = Example::load();
    let ingress = &documents(&format!("{DIR}/ingress/ingress.yaml"))[0];
    let annotation = "/metadata/annotations/nginx.ingress.kubernetes.io~1proxy-read-timeout";
    let read_timeout: u64 = string(ingress, annotation).parse().expect("seconds");
    for wsp in [
        example.server.request_timeout,
        example.server.stream_idle_timeout,
    ] {
        assert!(read_timeout > seconds(wsp), "{read_timeout} s, wsp {wsp:?}");
    }
    let callers = example.callers_service();
    for path in list(ingress, "/spec/rules/0/http/paths") {
        let backend = at(path, "/backend/service");
        assert_eq!(backend["name"], callers["metadata"]["name"], "{backend}");
        let mut ports = list(callers, "/spec/ports");
        assert!(
            ports.any(|p| p["name"] == backend["port"]["name"]),
            "{backend}"
        );
    }
}

/// Starts a Deployment's command as the kubelet would, with the test's binary, the
/// test's files for the mounted configuration (`-config`) and key (`--secret-key-file`),
/// `$(POD_NAME)` expanded, and `extra` flags after it.
fn spawn_as_written(deployment: &Value, binary: &str, files: [&str; 2], extra: &[&str]) -> Proc {
    let container = container(deployment);
    let [config, key] = files;
    let swaps = [
        (argument(container, "-config"), config),
        (argument(container, "--secret-key-file"), key),
        ("$(POD_NAME)", POD_NAME),
    ];
    let command = command(container);
    let (installed, args) = command.split_first().expect("a command");
    let name = Path::new(binary).file_name().and_then(|n| n.to_str());
    let name = name.expect("a binary name");
    assert!(installed.ends_with(name), "{installed} is not {name}");
    let swap = |word: &&str| {
        swaps
            .iter()
            .fold(word.to_string(), |w, (a, b)| w.replace(a, b))
    };
    let mut args: Vec<String> = args.iter().map(swap).collect();
    args.extend(extra.iter().map(|a| a.to_string()));
    Proc::spawn(binary, &args)
}

#[test]
fn the_commands_run_a_server_that_answers_the_probe_and_a_client_that_registers() {
    let example = Example::load();
    let key = ConfigFile::new("secret-key", &format!("{SECRET}\n"));
    let (server_cfg, client_cfg) = (cfg("wsp_server"), cfg("wsp_client"));
    let files = [server_cfg.as_str(), key.path()];
    let binary = env!("CARGO_BIN_EXE_wsp_server");
    let local = ["--host", "127.0.0.1", "--port", "0"];
    let server = spawn_as_written(example.server(), binary, files, &local);
    let server = Server::from_proc(server);

    let probe = string(container(example.server()), "/readinessProbe/httpGet/path");
    let reply = get(&format!("http://{}{probe}", server.addr), &[]);
    assert_eq!((reply.status, reply.text().as_str()), (200, "ok"));

    // The client, its pod's name for its id, registered to that server instead of the
    // headless Service's pods.
    let files = [client_cfg.as_str(), key.path()];
    let binary = env!("CARGO_BIN_EXE_wsp_client");
    let target = server.register_url();
    let client = spawn_as_written(example.client(), binary, files, &["--target", &target]);
    let status = format!("http://{}/status.json", server.addr);
    let id = format!("\"{POD_NAME}\"");
    let registered = poll(READY, || {
        get(&status, &[]).text().contains(&id).then_some(())
    });
    assert!(
        registered.is_some(),
        "never registered; log:\n{}",
        client.log.lock()
    );

    // Until its whitelist names the internal API, the client relays nothing.
    let upstream = upstream();
    let hello = format!("http://{}/hello", upstream.addr());
    let reply = relay(&server, "GET", &hello, &[], None);
    assert_eq!(reply.status, 527, "{}", reply.text());
}
