//! A payment whose notification is lost reaches the buyer's waiting page through the short
//! loop, with one query at a time however many pages watch it.

use std::time::{Duration, Instant};

use super::{Options, Vending};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_lost_notification_reaches_the_waiting_page_within_ten_seconds() {
    let v = Vending::start(Options::default()).await;
    let order = v.order("VM0001", 1).await;
    let no = order["order_no"].as_str().unwrap().to_owned();
    let sandbox = v.state.sandbox.clone().unwrap();
    let paid_at = Instant::now();
    let _lost = sandbox.pay(&no).unwrap();
    let before = sandbox.queries();

    // Ten pages of the buyer's poll the order, four times a second each.
    let mut seen = None;
    while paid_at.elapsed() < Duration::from_secs(10) {
        let views = futures_util::future::join_all((0..10).map(|_| v.order_view(&no))).await;
        if let Some(view) = views.iter().find(|o| o["status"] != "CREATED") {
            seen = Some((paid_at.elapsed(), view["status"].clone()));
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let (after, status) = seen.expect("the page never saw the payment within 10 s");
    assert!(
        ["PAID", "VENDING", "COMPLETED"].contains(&status.as_str().unwrap()),
        "{status}"
    );
    // Asked once per 3 s interval at most, whatever the number of pages: not once per poll.
    let queries = sandbox.queries() - before;
    let intervals = after.as_secs() / 3 + 1;
    assert!(
        queries <= intervals,
        "{queries} queries in {after:?} with 10 pages polling"
    );
    v.wait_for(&no, "COMPLETED", 20).await;
    v.stop().await;
}
