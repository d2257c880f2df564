//! The workspace resolver over real UDP and TCP sockets.

use std::net::SocketAddr;
use std::str::FromStr;
use std::time::Duration;

use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

use crate::support::World;

fn query(id: u16, name: &str, kind: RecordType) -> Vec<u8> {
    let mut message = Message::new(id, MessageType::Query, OpCode::Query);
    message.metadata.recursion_desired = true;
    message.add_query(Query::query(Name::from_str(name).expect("name"), kind));
    message.to_vec().expect("encodes")
}

async fn ask_udp(server: SocketAddr, id: u16, name: &str, kind: RecordType) -> Message {
    let socket = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    socket
        .send_to(&query(id, name, kind), server)
        .await
        .expect("send");
    let mut buf = vec![0u8; 1500];
    let (len, _) = tokio::time::timeout(Duration::from_secs(3), socket.recv_from(&mut buf))
        .await
        .expect("an answer in time")
        .expect("recv");
    let reply = Message::from_vec(&buf[..len]).expect("decodes");
    assert_eq!(reply.metadata.id, id);
    reply
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admitted_names_resolve_and_others_are_denied_and_recorded() {
    let world = World::start().await;

    let reply = ask_udp(world.dns_udp, 1, "allowed.test.", RecordType::A).await;
    assert_eq!(reply.metadata.response_code, ResponseCode::NoError);
    let RData::A(address) = &reply.answers[0].data else {
        panic!("an A record expected: {reply:?}");
    };
    let octets = address.0.octets();
    assert!(
        octets[0] == 198 && (octets[1] == 18 || octets[1] == 19),
        "{octets:?}"
    );

    let reply = ask_udp(world.dns_udp, 2, "allowed.test.", RecordType::AAAA).await;
    assert_eq!(reply.metadata.response_code, ResponseCode::NoError);
    assert!(reply.answers.is_empty());

    let reply = ask_udp(world.dns_udp, 3, "c2.attacker.test.", RecordType::A).await;
    assert_eq!(reply.metadata.response_code, ResponseCode::NXDomain);
    let row = world
        .audit
        .wait_for(|r| r.destination.as_deref() == Some("c2.attacker.test"))
        .await;
    assert_eq!(row.phase.as_deref(), Some("dns"));
    assert_eq!(row.policy_type.as_deref(), Some("dns"));
    assert_eq!(row.decision.as_deref(), Some("deny"));
    assert_eq!(row.reason.as_deref(), Some("host_not_allowed"));

    let reply = ask_udp(
        world.dns_udp,
        4,
        "secret-data.attacker.test.",
        RecordType::TXT,
    )
    .await;
    assert_eq!(reply.metadata.response_code, ResponseCode::Refused);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queries_over_tcp_are_length_prefixed_and_answered_in_turn() {
    let world = World::start().await;
    let mut stream = TcpStream::connect(world.dns_tcp).await.expect("connect");
    for (id, name, code) in [
        (7, "other.test.", ResponseCode::NoError),
        (8, "nope.test.", ResponseCode::NXDomain),
    ] {
        let bytes = query(id, name, RecordType::A);
        stream.write_u16(bytes.len() as u16).await.expect("length");
        stream.write_all(&bytes).await.expect("query");
        let len = stream.read_u16().await.expect("reply length");
        let mut reply = vec![0u8; usize::from(len)];
        stream.read_exact(&mut reply).await.expect("reply");
        let reply = Message::from_vec(&reply).expect("decodes");
        assert_eq!(
            (reply.metadata.id, reply.metadata.response_code),
            (id, code)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lookup_storm_writes_ten_rows_per_name() {
    let world = World::start().await;
    for id in 0..15 {
        let reply = ask_udp(world.dns_udp, id, "storm.attacker.test.", RecordType::A).await;
        assert_eq!(reply.metadata.response_code, ResponseCode::NXDomain);
    }
    let rows = world
        .audit
        .rows()
        .into_iter()
        .filter(|r| r.destination.as_deref() == Some("storm.attacker.test"))
        .count();
    assert_eq!(rows, 10);
}
