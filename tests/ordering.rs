//! Many events through one emitter: all arrive, in order, once each.
#![cfg(feature = "emitter")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use support::{all_delivered, fast_config, Harness, Receiver};

#[actix_web::test]
async fn a_thousand_events_arrive_in_order_none_lost_none_doubled() {
    let mut h = Harness::start();
    // A few failures on the way must not reorder or duplicate anything.
    h.receiver.script_statuses([200, 500, 200, 200, 503]);
    h.attach("o", "tick", h.config().secret("s")).await;
    h.emit_numbers("tick", 0..1000);
    assert!(all_delivered(&h.finals(1000).await));

    // Requests 2 and 5 failed, so events 1 and 3 were sent twice, each retry
    // right after its failure; everything else exactly once, in order.
    let mut expected = vec![0, 1, 1, 2, 3, 3];
    expected.extend(4..1000);
    assert_eq!(h.receiver.numbers(1002).await, expected);
    assert!(h.receiver.try_next().is_none());
}

#[actix_web::test]
async fn the_same_order_on_every_emitter_of_an_event() {
    let mut h = Harness::start();
    let mut other = Receiver::start();
    h.attach("a", "tick", h.config()).await;
    h.attach("b", "tick", fast_config(other.url("/"))).await;
    h.emit_numbers("tick", 0..200);
    for receiver in [&mut h.receiver, &mut other] {
        assert_eq!(receiver.numbers(200).await, (0..200).collect::<Vec<_>>());
    }
}
