//! Policy::compile: merging provider and role capabilities, and versions.

use evershell_caps::{parse, provider_capability, Capability, Policy, RequestFacts, Scheme};

fn caps(yaml: &str) -> Vec<Capability> {
    parse(yaml).expect("test caps are valid")
}

fn names(p: &Policy) -> Vec<&str> {
    p.capabilities().iter().map(|c| c.name.as_str()).collect()
}

fn provider() -> Vec<Capability> {
    let mut out = vec![provider_capability(
        "anthropic",
        "api.anthropic.com",
        None,
        "key",
    )];
    out.extend(caps(
        "- name: shared\n  domains: [provider.example]\n  methods: [GET]\n",
    ));
    out
}

#[test]
fn puts_provider_capabilities_before_role_capabilities() {
    let p = Policy::compile(
        provider(),
        caps("- name: role-a\n  domains: [a.example]\n  methods: [GET]\n"),
    );
    assert_eq!(names(&p), ["_provider", "shared", "role-a"]);
}

#[test]
fn replaces_a_provider_capability_with_the_role_one_of_the_same_name_in_place() {
    let role = caps("- name: shared\n  domains: [role.example]\n  methods: [POST]\n- name: z\n  domains: [z.example]\n  methods: [GET]\n");
    let p = Policy::compile(provider(), role);
    assert_eq!(names(&p), ["_provider", "shared", "z"]);
    assert!(!p.admits_name("provider.example"));
    assert!(p.admits_name("role.example"));
}

#[test]
fn never_lets_a_role_replace_a_platform_capability() {
    let mut rogue = caps("- name: rogue\n  domains: [evil.example]\n  methods: [POST]\n");
    rogue[0].name = "_provider".to_owned();
    let p = Policy::compile(provider(), rogue);
    assert_eq!(names(&p), ["_provider", "shared"]);
    assert!(p.admits_name("api.anthropic.com"));
    assert!(!p.admits_name("evil.example"));

    let facts = RequestFacts::new(
        "POST",
        Scheme::Https,
        "api.anthropic.com",
        443,
        "/v1/messages",
    );
    assert_eq!(p.decide(&facts).auth[0].credential, "key");
}

#[test]
fn versions_equal_policies_equally_and_different_ones_differently() {
    let role = "- name: a\n  domains: [a.example]\n  methods: [GET]\n";
    let v1 = Policy::compile(provider(), caps(role));
    let v2 = Policy::compile(provider(), caps(role));
    assert_eq!(v1.version(), v2.version());
    assert!(v1.version().starts_with("sha256:"));
    assert_eq!(v1.version().len(), "sha256:".len() + 64);

    // Same meaning, different spelling: same version.
    let respelled = "- name: a\n  type: http\n  allow:\n    - name: a\n      domains: [\"A.EXAMPLE.:443\"]\n      methods: [GET]\n";
    assert_eq!(
        Policy::compile(provider(), caps(respelled)).version(),
        v1.version()
    );

    let other = Policy::compile(
        provider(),
        caps("- name: a\n  domains: [a.example]\n  methods: [POST]\n"),
    );
    assert_ne!(other.version(), v1.version());
}

#[test]
fn pins_the_version_of_a_known_policy() {
    // The version is the hash of the canonical text; a change here means
    // every deployed artefact would change version.
    let p = Policy::compile(
        Vec::new(),
        caps("- name: a\n  domains: [a.example]\n  methods: [GET]\n"),
    );
    let text = "- name: a\n  type: http\n  allow:\n    - name: a\n      domains: [a.example]\n      methods: [GET]\n";
    assert_eq!(evershell_caps::to_yaml(p.capabilities()), text);
    assert_eq!(p.version(), PINNED_VERSION);
}

const PINNED_VERSION: &str =
    "sha256:6cc3780a59e947c89261a4905374d6d3052aa1df61c6ed4dae517f87ef7dd48e";
