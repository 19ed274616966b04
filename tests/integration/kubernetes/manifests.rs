//! `examples/kubernetes/` read as kustomize would assemble it, before its transformations:
//! the objects of the files its `kustomization.yaml` lists, as JSON values, and the two
//! configuration files loaded by wsp's own loaders. Lookups panic with what they looked
//! for, so a broken manifest fails a test with a message saying where.

use serde_json::Value;
use wsp::config::{ClientConfig, ServerConfig};

pub const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/kubernetes");

/// The example's objects and configuration.
pub struct Example {
    /// The namespace kustomize puts every object in.
    pub namespace: String,
    pub objects: Vec<Value>,
    pub server: ServerConfig,
    pub client: ClientConfig,
    /// The client's file as plain YAML, to tell a key set from its default.
    pub client_yaml: Value,
}

impl Example {
    pub fn load() -> Example {
        let kustomization = kustomization(DIR);
        let objects = files(&kustomization, "/resources")
            .iter()
            .flat_map(|file| documents(&format!("{DIR}/{file}")))
            .collect();
        let client_text = read(&cfg("wsp_client"));
        Example {
            namespace: string(&kustomization, "/namespace").to_string(),
            objects,
            server: ServerConfig::from_yaml(&read(&cfg("wsp_server")), "wsp_server.cfg")
                .unwrap_or_else(|e| panic!("{e}")),
            client: ClientConfig::from_yaml(&client_text, "wsp_client.cfg")
                .unwrap_or_else(|e| panic!("{e}")),
            client_yaml: yaml(&client_text),
        }
    }

    /// The one object of this kind and name.
    pub fn find(&self, kind: &str, name: &str) -> &Value {
        let mut found = self.objects.iter().filter(|o| {
            o["kind"] == kind && o.pointer("/metadata/name").and_then(Value::as_str) == Some(name)
        });
        match (found.next(), found.next()) {
            (Some(object), None) => object,
            _ => panic!("expected one {kind} {name} in {DIR}"),
        }
    }

    pub fn server(&self) -> &Value {
        self.find("Deployment", "wsp-server")
    }

    pub fn client(&self) -> &Value {
        self.find("Deployment", "wsp-client")
    }

    pub fn headless(&self) -> &Value {
        self.find("Service", "wsp-server-headless")
    }

    pub fn callers_service(&self) -> &Value {
        self.find("Service", "wsp-server")
    }
}

/// The path of the example's `<name>.cfg`.
pub fn cfg(name: &str) -> String {
    format!("{DIR}/{name}.cfg")
}

pub fn read(path: &str) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

pub fn yaml(text: &str) -> Value {
    serde_saphyr::from_str(text).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

/// The `kustomization.yaml` of a directory.
pub fn kustomization(dir: &str) -> Value {
    yaml(&read(&format!("{dir}/kustomization.yaml")))
}

/// Every non-empty document of a YAML file.
pub fn documents(path: &str) -> Vec<Value> {
    let docs: Vec<Value> =
        serde_saphyr::from_multiple(&read(path)).unwrap_or_else(|e| panic!("{path}: {e}"));
    docs.into_iter().filter(|d| !d.is_null()).collect()
}

/// The value at a JSON pointer (`/spec/ports/0/port`; `~1` for a `/` in a key).
pub fn at<'a>(value: &'a Value, pointer: &str) -> &'a Value {
    let found = value.pointer(pointer);
    found.unwrap_or_else(|| panic!("no {pointer} in {value:#}"))
}

pub fn string<'a>(value: &'a Value, pointer: &str) -> &'a str {
    let found = at(value, pointer);
    let text = found.as_str();
    text.unwrap_or_else(|| panic!("{pointer}: {found} is no string"))
}

pub fn number(value: &Value, pointer: &str) -> u64 {
    let found = at(value, pointer);
    let n = found.as_u64();
    n.unwrap_or_else(|| panic!("{pointer}: {found} is no whole number"))
}

/// The items of the list at `pointer` (none when there is no list).
pub fn list<'a>(value: &'a Value, pointer: &str) -> impl Iterator<Item = &'a Value> {
    value
        .pointer(pointer)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
}

/// The file names in a kustomization's list (`/resources`): not `..`, not a directory
/// (a name without an extension).
pub fn files(value: &Value, pointer: &str) -> Vec<String> {
    let names = list(value, pointer).filter_map(Value::as_str);
    let files = names.filter(|n| n.contains('.') && !n.starts_with('.'));
    files.map(String::from).collect()
}

/// The Deployment's one container.
pub fn container(deployment: &Value) -> &Value {
    let containers = at(deployment, "/spec/template/spec/containers").as_array();
    match containers.map(Vec::as_slice) {
        Some([container]) => container,
        other => panic!("expected one container, found {other:?}"),
    }
}

/// A Service's or a probe's port (a number, or a port's name) as the container's number.
pub fn container_port(container: &Value, port: &Value) -> u64 {
    if let Some(number) = port.as_u64() {
        return number;
    }
    let named: Vec<&Value> = list(container, "/ports")
        .filter(|p| p["name"] == *port)
        .collect();
    match named.as_slice() {
        [one] => number(one, "/containerPort"),
        _ => panic!("no container port named {port} in {container:#}"),
    }
}

/// Whether `selector` has labels and the pods of `deployment` carry every one of them.
pub fn selects(selector: &Value, deployment: &Value) -> bool {
    let labels = at(deployment, "/spec/template/metadata/labels");
    let pairs = selector.as_object().filter(|s| !s.is_empty());
    pairs.is_some_and(|s| s.iter().all(|(k, v)| labels.get(k) == Some(v)))
}

/// The container's command, word by word.
pub fn command(container: &Value) -> Vec<&str> {
    let words = list(container, "/command").map(Value::as_str);
    words.map(|w| w.expect("a command word")).collect()
}

/// The word after `flag` in the container's command.
pub fn argument<'a>(container: &'a Value, flag: &str) -> &'a str {
    let command = command(container);
    let at = command.iter().position(|a| *a == flag);
    let value = at.and_then(|i| command.get(i + 1));
    value.unwrap_or_else(|| panic!("no {flag} in {command:?}"))
}

/// Where a file in the container comes from: the kind (`configMap`, `secret`), name and
/// key of the projected volume's source that puts it at `path`.
pub fn mounted(deployment: &Value, path: &str) -> (String, String, String) {
    let mut mounts = list(container(deployment), "/volumeMounts");
    let (volume, rest) = mounts
        .find_map(|m| {
            let under = path.strip_prefix(string(m, "/mountPath"))?;
            Some((string(m, "/name"), under.strip_prefix('/')?))
        })
        .unwrap_or_else(|| panic!("nothing mounted at {path}"));
    let mut volumes = list(deployment, "/spec/template/spec/volumes");
    let volume = volumes
        .find(|v| v["name"] == volume)
        .expect("the mount's volume");
    for source in list(volume, "/projected/sources") {
        let kind_and_source = source.as_object().and_then(|s| s.iter().next());
        let (kind, source) = kind_and_source.expect("a projected source");
        if let Some(item) = list(source, "/items").find(|i| i["path"] == rest) {
            let (name, key) = (string(source, "/name"), string(item, "/key"));
            return (kind.clone(), name.to_string(), key.to_string());
        }
    }
    panic!("no projected source puts {rest} into {volume:#}")
}
