//! Answers to the workspace's DNS queries, decided by the policy alone. A
//! name some rule could admit gets a *synthetic* address (the proxy ignores
//! which address the agent dials, so the answer only has to be stable); any
//! other name is refused without ever being looked up, so that queries
//! cannot carry data out.

use std::net::Ipv4Addr;

use evershell_caps::Policy;
use hickory_proto::op::{Edns, Header, Message, MessageType, Metadata, OpCode, ResponseCode};
use hickory_proto::rr::rdata::A;
use hickory_proto::rr::{DNSClass, RData, Record, RecordType};
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder};
use sha2::{Digest, Sha256};

/// TTL of a synthetic answer, seconds.
pub(crate) const SYNTHETIC_TTL: u32 = 60;

/// Limits of RFC 1035 §2.3.4 on the text form.
const MAX_NAME_BYTES: usize = 253;
const MAX_LABEL_BYTES: usize = 63;

/// UDP payload size advertised when the query used EDNS (RFC 6891).
const EDNS_PAYLOAD: u16 = 1232;

/// The reply to one query and, when it was a denial, what the row says.
#[derive(Debug)]
pub(crate) struct Answer {
    /// The wire-format response; `None` when the datagram deserves none (a
    /// response, or bytes that are not DNS at all).
    pub reply: Option<Vec<u8>>,
    pub denied: Option<Denied>,
}

/// A refused query, for its row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Denied {
    /// The query name as asked, lower-cased, without the final dot; empty
    /// when the query could not be decoded.
    pub name: String,
    pub reason: &'static str,
}

/// Answers `query` (wire format) under `policy`.
pub(crate) fn answer(policy: &Policy, query: &[u8]) -> Answer {
    let Ok(message) = Message::from_vec(query) else {
        return undecodable(query);
    };
    if message.metadata.message_type != MessageType::Query {
        return Answer {
            reply: None,
            denied: None,
        };
    }

    let mut reply = Message::response(message.metadata.id, message.metadata.op_code);
    reply.metadata = Metadata::response_from_request(&message.metadata);
    reply.metadata.recursion_available = true;
    if message.edns.is_some() {
        let mut edns = Edns::new();
        edns.set_max_payload(EDNS_PAYLOAD);
        reply.set_edns(edns);
    }
    if message.metadata.op_code != OpCode::Query {
        return finish(reply, ResponseCode::NotImp, None);
    }
    let [question] = message.queries.as_slice() else {
        return finish(reply, ResponseCode::FormErr, None);
    };
    reply.add_query(question.clone());

    let name = question.name().to_ascii().to_ascii_lowercase();
    let name = name.strip_suffix('.').unwrap_or(&name).to_owned();
    let refuse = |reason| {
        Some(Denied {
            name: name.clone(),
            reason,
        })
    };
    if !well_formed(&name) {
        return finish(reply, ResponseCode::Refused, refuse("invalid_name"));
    }
    if question.query_class() != DNSClass::IN {
        return finish(reply, ResponseCode::Refused, refuse("query_class_refused"));
    }

    let admitted = evershell_caps::normalize_host(&name)
        .is_ok_and(|(host, port)| port.is_none() && policy.admits_name(&host));
    match (admitted, question.query_type()) {
        (true, RecordType::A) => {
            let address = synthetic_address(&name);
            let record =
                Record::from_rdata(question.name().clone(), SYNTHETIC_TTL, RData::A(A(address)));
            reply.add_answer(record);
            finish(reply, ResponseCode::NoError, None)
        }
        // Names that resolve have only an IPv4 synthetic address; every
        // other type is an empty answer (NODATA), which sends clients to A.
        (true, _) => finish(reply, ResponseCode::NoError, None),
        (false, RecordType::A | RecordType::AAAA) => {
            finish(reply, ResponseCode::NXDomain, refuse("host_not_allowed"))
        }
        // TXT, ANY, NULL and the rest can carry data: refused outright.
        (false, _) => finish(reply, ResponseCode::Refused, refuse("query_type_refused")),
    }
}

/// The address a name resolves to: stable, inside 198.18.0.0/15 (RFC 2544
/// benchmarking space, never routed), never the range's first or last.
pub(crate) fn synthetic_address(name: &str) -> Ipv4Addr {
    let digest = Sha256::digest(name.as_bytes());
    let bits = u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]]) & 0x1_ffff;
    let host = bits.clamp(1, 0x1_fffe);
    Ipv4Addr::from(0xc612_0000 | host)
}

fn well_formed(name: &str) -> bool {
    name.len() <= MAX_NAME_BYTES && name.split('.').all(|label| label.len() <= MAX_LABEL_BYTES)
}

fn finish(mut reply: Message, code: ResponseCode, denied: Option<Denied>) -> Answer {
    reply.metadata.response_code = code;
    Answer {
        reply: reply.to_vec().ok(),
        denied,
    }
}

/// A query whose header decodes but whose body does not (an over-long name,
/// a bad label) is refused with the header alone; anything shorter than a
/// header gets no reply.
fn undecodable(query: &[u8]) -> Answer {
    let mut decoder = BinDecoder::new(query);
    let Ok(header) = Header::read(&mut decoder) else {
        return Answer {
            reply: None,
            denied: None,
        };
    };
    if header.metadata.message_type != MessageType::Query {
        return Answer {
            reply: None,
            denied: None,
        };
    }
    let mut reply = Message::error_msg(
        header.metadata.id,
        header.metadata.op_code,
        ResponseCode::Refused,
    );
    reply.metadata.recursion_desired = header.metadata.recursion_desired;
    reply.metadata.recursion_available = true;
    Answer {
        reply: reply.to_vec().ok(),
        denied: Some(Denied {
            name: String::new(),
            reason: "invalid_name",
        }),
    }
}
