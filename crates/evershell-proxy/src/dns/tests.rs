use std::net::Ipv4Addr;
use std::str::FromStr;

use evershell_caps::Policy;
use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};

use super::answer::{answer, synthetic_address, Denied, SYNTHETIC_TTL};

fn policy() -> Policy {
    let yaml = "- name: api
  type: http
  allow:
    - domains: [api.example.test, \"*.cdn.example.test\"]
      methods: [GET]
";
    let caps = evershell_caps::parse(yaml).expect("caps parse");
    Policy::compile(Vec::new(), caps)
}

fn query(name: &str, kind: RecordType) -> Vec<u8> {
    let mut message = Message::new(4242, MessageType::Query, OpCode::Query);
    message.metadata.recursion_desired = true;
    message.add_query(Query::query(Name::from_str(name).expect("name"), kind));
    message.set_edns(Edns::new());
    message.to_vec().expect("encodes")
}

fn reply(bytes: &[u8]) -> (Message, Option<Denied>) {
    let answer = answer(&policy(), bytes);
    let reply = Message::from_vec(&answer.reply.expect("a reply")).expect("reply decodes");
    (reply, answer.denied)
}

#[test]
fn an_admitted_name_resolves_to_its_stable_synthetic_address() {
    let (message, denied) = reply(&query("API.example.test.", RecordType::A));
    assert_eq!(denied, None);
    assert_eq!(message.metadata.id, 4242);
    assert_eq!(message.metadata.response_code, ResponseCode::NoError);
    assert!(
        message.edns.is_some(),
        "an EDNS query gets an OPT record back"
    );
    let [record] = message.answers.as_slice() else {
        panic!("one answer expected: {message:?}");
    };
    assert_eq!(record.ttl, SYNTHETIC_TTL);
    let RData::A(address) = &record.data else {
        panic!("an A record expected");
    };
    assert_eq!(address.0, synthetic_address("api.example.test"));
    let octets = address.0.octets();
    assert!(octets[0] == 198 && (octets[1] == 18 || octets[1] == 19));
}

#[test]
fn an_admitted_name_has_no_ipv6_or_text_records() {
    for kind in [RecordType::AAAA, RecordType::TXT] {
        let (message, denied) = reply(&query("x.cdn.example.test.", kind));
        assert_eq!(denied, None);
        assert_eq!(message.metadata.response_code, ResponseCode::NoError);
        assert!(message.answers.is_empty());
    }
}

#[test]
fn other_names_do_not_exist_and_are_reported() {
    for kind in [RecordType::A, RecordType::AAAA] {
        let (message, denied) = reply(&query("exfil-data.attacker.test.", kind));
        assert_eq!(message.metadata.response_code, ResponseCode::NXDomain);
        assert_eq!(
            denied,
            Some(Denied {
                name: "exfil-data.attacker.test".into(),
                reason: "host_not_allowed",
            })
        );
    }
}

#[test]
fn data_carrying_types_outside_the_policy_are_refused() {
    for kind in [
        RecordType::TXT,
        RecordType::ANY,
        RecordType::NULL,
        RecordType::MX,
    ] {
        let (message, denied) = reply(&query("a.b.cdn.example.test.", kind));
        assert_eq!(
            message.metadata.response_code,
            ResponseCode::Refused,
            "{kind:?}"
        );
        assert_eq!(denied.expect("reported").reason, "query_type_refused");
    }
}

#[test]
fn names_longer_than_253_bytes_or_with_long_labels_are_refused() {
    // Wire form built by hand: a valid header, then a name the decoder
    // rejects (four 63-byte labels: 255 bytes of text).
    let mut long_name = vec![0x10, 0x92, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
    for _ in 0..4 {
        long_name.push(63);
        long_name.extend(std::iter::repeat_n(b'a', 63));
    }
    long_name.extend_from_slice(&[0, 0, 1, 0, 1]);
    let (message, denied) = reply(&long_name);
    assert_eq!(message.metadata.id, 0x1092);
    assert_eq!(message.metadata.response_code, ResponseCode::Refused);
    assert_eq!(denied.expect("reported").reason, "invalid_name");

    let mut long_label = vec![0x10, 0x93, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 64];
    long_label.extend(std::iter::repeat_n(b'a', 64));
    long_label.extend_from_slice(&[0, 0, 1, 0, 1]);
    let (message, _) = reply(&long_label);
    assert_eq!(message.metadata.response_code, ResponseCode::Refused);
}

#[test]
fn responses_and_garbage_get_no_reply() {
    let mut response = Message::new(1, MessageType::Response, OpCode::Query);
    response.add_query(Query::query(
        Name::from_str("api.example.test.").expect("name"),
        RecordType::A,
    ));
    assert!(answer(&policy(), &response.to_vec().expect("encodes"))
        .reply
        .is_none());
    assert!(answer(&policy(), b"\x01\x02").reply.is_none());
}

#[test]
fn synthetic_addresses_stay_inside_the_benchmarking_range() {
    for name in ["a", "b.test", "api.example.test", "x.y.z"] {
        let address = synthetic_address(name);
        let value = u32::from(address);
        assert!(value > u32::from(Ipv4Addr::new(198, 18, 0, 0)));
        assert!(value < u32::from(Ipv4Addr::new(198, 19, 255, 255)));
    }
}
