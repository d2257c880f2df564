use super::*;

fn verdicts_of(chunks: &[&[u8]]) -> Vec<Verdict> {
    let verdicts = Verdicts::default();
    let mut scanner = Scanner::new();
    for chunk in chunks {
        scanner.feed(chunk, &verdicts);
    }
    std::iter::from_fn(|| verdicts.next()).collect()
}

fn bytewise(stream: &[u8]) -> Vec<Verdict> {
    let chunks: Vec<&[u8]> = stream.chunks(1).collect();
    verdicts_of(&chunks)
}

#[test]
fn pipelined_clean_requests_get_one_clean_verdict_each() {
    let stream = b"GET /a HTTP/1.1\r\nHost: a.test\r\n\r\n\
        POST /b HTTP/1.1\r\nHost: a.test\r\nContent-Length: 5\r\n\r\nhello\
        GET /c HTTP/1.1\r\nHost: a.test\r\n\r\n";
    assert_eq!(verdicts_of(&[stream]), vec![Verdict::Clean; 3]);
    assert_eq!(bytewise(stream), vec![Verdict::Clean; 3]);
}

#[test]
fn content_length_with_transfer_encoding_is_refused_in_either_order() {
    let cl_first = b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\
        Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n";
    let te_first = b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\
        Content-Length: 5\r\n\r\n0\r\n\r\n";
    let refused = Verdict::Refused("content_length_with_transfer_encoding");
    assert_eq!(verdicts_of(&[cl_first]), vec![refused]);
    assert_eq!(verdicts_of(&[te_first]), vec![refused]);
}

#[test]
fn differing_content_lengths_are_refused_and_equal_duplicates_are_not() {
    let differing = b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n";
    assert_eq!(
        verdicts_of(&[differing]),
        vec![Verdict::Refused("conflicting_content_length")]
    );
    let listed = b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 6\r\n\r\n";
    assert_eq!(
        verdicts_of(&[listed]),
        vec![Verdict::Refused("conflicting_content_length")]
    );
    let equal = b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nhi";
    assert_eq!(verdicts_of(&[equal]), vec![Verdict::Clean]);
}

#[test]
fn a_head_over_64_kib_is_refused_before_it_ends() {
    let mut head = b"GET / HTTP/1.1\r\nHost: a\r\nX-Pad: ".to_vec();
    head.resize(MAX_HEAD_BYTES + 10, b'p');
    assert_eq!(
        verdicts_of(&[&head]),
        vec![Verdict::Refused("header_section_too_large")]
    );
}

#[test]
fn a_request_hidden_in_a_chunked_body_is_not_taken_for_a_head() {
    let hidden =
        b"GET /smuggled HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n";
    let mut stream = b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    stream.extend_from_slice(format!("{:x};ext=1\r\n", hidden.len()).as_bytes());
    stream.extend_from_slice(hidden);
    stream.extend_from_slice(b"\r\n0\r\nX-Trailer: t\r\n\r\n");
    stream.extend_from_slice(b"GET /next HTTP/1.1\r\nHost: a\r\n\r\n");

    assert_eq!(
        verdicts_of(&[&stream]),
        vec![Verdict::Clean, Verdict::Clean]
    );
    assert_eq!(bytewise(&stream), vec![Verdict::Clean, Verdict::Clean]);
}

#[test]
fn a_head_hyper_will_refuse_stops_all_further_verdicts() {
    let stream = b"GET / HTTP/9.9\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n";
    assert_eq!(verdicts_of(&[stream]), Vec::new());
}

#[test]
fn bare_line_feeds_end_a_head_as_httparse_accepts_them() {
    let stream = b"GET / HTTP/1.1\nHost: a\n\nGET / HTTP/1.1\r\nHost: a\r\n\r\n";
    assert_eq!(verdicts_of(&[stream]), vec![Verdict::Clean; 2]);
}
