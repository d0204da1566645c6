//! Bills: plain and gzip files, WeChat's XML error in place of a file, the fund flow's forced
//! HMAC-SHA256.

use std::io::Write;

use wechat_pay::{AccountType, BillType, DownloadBill, DownloadFundFlow, Error, Fen, SignType};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::support::{SignedRequest, client, xml};

const BILL: &str = include_str!("../../testdata/bill_all.csv");
const FUND_FLOW: &str = include_str!("../../testdata/fund_flow.csv");

fn day() -> time::Date {
    time::macros::date!(2024 - 01 - 31)
}

#[tokio::test]
async fn download_bill_plain() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/pay/downloadbill"))
        .and(SignedRequest::merchant(
            SignType::Md5,
            &[("bill_date", "20240131"), ("bill_type", "ALL")],
        ))
        .respond_with(ResponseTemplate::new(200).set_body_raw(BILL, "text/plain"))
        .expect(1)
        .mount(&server)
        .await;
    let bill = client(&server)
        .download(&DownloadBill::new(day(), BillType::All))
        .await
        .unwrap();
    assert_eq!(bill.rows.len(), 3);
    assert_eq!(bill.summary.total_fee, Some(Fen::new(700)));
}

#[tokio::test]
async fn download_bill_gzip() {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(BILL.as_bytes()).unwrap();
    let gz = gz.finish().unwrap();
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/pay/downloadbill"))
        .and(SignedRequest::merchant(
            SignType::Md5,
            &[("tar_type", "GZIP"), ("bill_type", "SUCCESS")],
        ))
        .respond_with(ResponseTemplate::new(200).set_body_raw(gz, "application/octet-stream"))
        .mount(&server)
        .await;
    let bill = client(&server)
        .download(&DownloadBill::new(day(), BillType::Success).gzip())
        .await
        .unwrap();
    assert_eq!(bill.rows[1].body.as_deref(), Some("Cola, 330ml"));
}

#[tokio::test]
async fn download_bill_error_reply() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/pay/downloadbill"))
        .respond_with(xml("<xml><return_code><![CDATA[FAIL]]></return_code>\
             <return_msg><![CDATA[No Bill Exist]]></return_msg>\
             <error_code><![CDATA[20002]]></error_code></xml>"))
        .mount(&server)
        .await;
    match client(&server)
        .download(&DownloadBill::new(day(), BillType::All))
        .await
    {
        Err(Error::Protocol { return_msg }) => assert_eq!(return_msg, "No Bill Exist"),
        other => panic!("expected the bill error, got {other:?}"),
    }
}

#[tokio::test]
async fn download_bill_malformed_file() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/pay/downloadbill"))
        .respond_with(
            ResponseTemplate::new(200).set_body_raw("交易时间,公众账号ID\n`x", "text/plain"),
        )
        .mount(&server)
        .await;
    assert!(matches!(
        client(&server)
            .download(&DownloadBill::new(day(), BillType::All))
            .await,
        Err(Error::Decode { .. })
    ));
}

#[tokio::test]
async fn download_fund_flow_is_always_hmac_sha256() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/pay/downloadfundflow"))
        .and(SignedRequest::merchant(
            SignType::HmacSha256,
            &[("bill_date", "20240131"), ("account_type", "Basic")],
        ))
        .respond_with(ResponseTemplate::new(200).set_body_raw(FUND_FLOW, "text/plain"))
        .expect(1)
        .mount(&server)
        .await;
    // The client signs with MD5 elsewhere; this endpoint overrides it.
    let flow = client(&server)
        .download(&DownloadFundFlow::new(day(), AccountType::Basic))
        .await
        .unwrap();
    assert_eq!(flow.summary.count, 2);
    assert_eq!(flow.rows[0].amount, Fen::new(350));
}
