//! API v3 error codes (`{code, message, detail}` with the HTTP status).

use crate::wire_enum::wire_enum;

wire_enum! {
    /// WeChat Pay v3's error `code` values.
    pub enum V3ErrorCode {
        /// WeChat had an internal error: retry the same request.
        SystemError => "SYSTEM_ERROR",
        /// Too many requests: slow down and retry.
        FrequencyLimited => "FREQUENCY_LIMITED",
        /// The bank had an error: retry the same request.
        BankError => "BANKERROR",
        /// The request's signature was refused.
        SignError => "SIGN_ERROR",
        /// A parameter is missing or invalid.
        ParamError => "PARAM_ERROR",
        /// The request is not valid in the resource's state.
        InvalidRequest => "INVALID_REQUEST",
        /// No such order.
        OrderNotExist => "ORDER_NOT_EXIST",
        /// No such resource (refund, bill…).
        ResourceNotExists => "RESOURCE_NOT_EXISTS",
        /// The order is paid.
        OrderPaid => "ORDERPAID",
        /// The order is closed.
        OrderClosed => "ORDER_CLOSED",
        /// The merchant's balance is insufficient (refunds, transfers): top it up, then retry.
        NotEnough => "NOT_ENOUGH",
        /// The merchant lacks permission for this API.
        NoAuth => "NO_AUTH",
        /// The merchant does not exist.
        MchNotExists => "MCH_NOT_EXISTS",
        /// The app id and merchant id do not belong together.
        AppIdMchIdNotMatch => "APPID_MCHID_NOT_MATCH",
        /// The out_trade_no was used with other parameters.
        OutTradeNoUsed => "OUT_TRADE_NO_USED",
        /// The payer's account is abnormal.
        UserAccountAbnormal => "USER_ACCOUNT_ABNORMAL",
        /// The trade failed (see the message).
        TradeError => "TRADE_ERROR",
        /// A code payment waits for the payer to confirm: query it until it ends (or reverse it).
        UserPaying => "USERPAYING",
        /// A business rule refused it.
        RuleLimit => "RULE_LIMIT",
    }
}

impl V3ErrorCode {
    /// Whether the same request may succeed later (WeChat's "retry" codes).
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            V3ErrorCode::SystemError | V3ErrorCode::FrequencyLimited | V3ErrorCode::BankError
        )
    }
}
