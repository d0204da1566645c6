//! The vending tables' migrations, embedded and applied in order at start-up (each once, in the
//! `vending_migrations` table). A migration that ran is never edited: a change is a new one.

pub(super) const SCHEMA_V1: &str = "
CREATE TABLE vm_machines (
    inner_code VARCHAR(32) NOT NULL PRIMARY KEY,
    name TEXT NOT NULL,
    address TEXT NOT NULL,
    lat DOUBLE PRECISION NOT NULL,
    lng DOUBLE PRECISION NOT NULL,
    status VARCHAR(16) NOT NULL
);
CREATE TABLE vm_skus (
    sku_id BIGINT NOT NULL PRIMARY KEY,
    name TEXT NOT NULL,
    image TEXT NOT NULL,
    unit TEXT NOT NULL
);
CREATE TABLE vm_slots (
    inner_code VARCHAR(32) NOT NULL,
    slot_no VARCHAR(16) NOT NULL,
    sku_id BIGINT NOT NULL,
    price BIGINT NOT NULL,
    capacity BIGINT NOT NULL,
    PRIMARY KEY (inner_code, slot_no)
);
CREATE TABLE vm_orders (
    order_no VARCHAR(32) NOT NULL PRIMARY KEY,
    inner_code VARCHAR(32) NOT NULL,
    sku_id BIGINT NOT NULL,
    sku_name TEXT NOT NULL,
    slot_no VARCHAR(16) NOT NULL,
    amount BIGINT NOT NULL,
    channel VARCHAR(16) NOT NULL,
    method VARCHAR(32) NOT NULL,
    open_id VARCHAR(128),
    status VARCHAR(16) NOT NULL,
    payment_id VARCHAR(64),
    pay_action TEXT,
    lock_token VARCHAR(64),
    refund_no VARCHAR(32),
    reason TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    paid_at BIGINT,
    vend_at BIGINT,
    ended_at BIGINT
);
CREATE INDEX vm_orders_by_buyer ON vm_orders (open_id, created_at);
CREATE INDEX vm_orders_by_status ON vm_orders (status, updated_at);
";

/// Demo data: three machines around Tiananmen, six SKUs, slots with one SKU sold out.
pub(super) const SEED_V2: &str = "
INSERT INTO vm_machines (inner_code, name, address, lat, lng, status) VALUES
 ('VM0001', 'Lobby', 'No. 1 Demo Road, Dongcheng, Beijing', 39.9087, 116.3975, 'ONLINE'),
 ('VM0002', 'Library', 'No. 8 Demo Street, Xicheng, Beijing', 39.9120, 116.3910, 'ONLINE'),
 ('VM0003', 'Station', 'No. 3 Far Avenue, Haidian, Beijing', 39.9900, 116.3100, 'ONLINE');
INSERT INTO vm_skus (sku_id, name, image, unit) VALUES
 (1, 'Cola', '/static/cola.svg', '330ml can'),
 (2, 'Mineral water', '/static/water.svg', '550ml bottle'),
 (3, 'Potato chips', '/static/chips.svg', '70g bag'),
 (4, 'Orange juice', '/static/juice.svg', '300ml bottle'),
 (5, 'Iced coffee', '/static/coffee.svg', '250ml can'),
 (6, 'Chocolate bar', '/static/chocolate.svg', '45g bar');
INSERT INTO vm_slots (inner_code, slot_no, sku_id, price, capacity) VALUES
 ('VM0001', 'A1', 1, 350, 8),
 ('VM0001', 'A2', 1, 300, 2),
 ('VM0001', 'A3', 2, 200, 10),
 ('VM0001', 'B1', 3, 500, 5),
 ('VM0001', 'B2', 4, 450, 0),
 ('VM0001', 'B3', 5, 600, 4),
 ('VM0002', 'A1', 2, 200, 6),
 ('VM0002', 'A2', 6, 550, 3),
 ('VM0002', 'A3', 1, 350, 1),
 ('VM0003', 'A1', 5, 650, 9),
 ('VM0003', 'A2', 3, 500, 2);
";

/// Sellers, the audit of their actions, machine owners and secrets, shared settings (the session
/// secret). Machines seeded by v2 belong to nobody until a seller is given them (demo mode gives
/// them to the demo seller), and a machine that belongs to nobody sells nothing.
pub(super) const SCHEMA_V3: &str = "
ALTER TABLE vm_machines ADD COLUMN owner VARCHAR(64);
ALTER TABLE vm_machines ADD COLUMN secret VARCHAR(128);
ALTER TABLE vm_orders ADD COLUMN refunded BIGINT NOT NULL DEFAULT 0;
ALTER TABLE vm_orders ADD COLUMN buyer_app VARCHAR(20);
CREATE TABLE vm_sellers (
    login VARCHAR(64) NOT NULL PRIMARY KEY,
    password_hash TEXT NOT NULL,
    enabled BIGINT NOT NULL,
    demo BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE TABLE vm_audit (
    id VARCHAR(40) NOT NULL PRIMARY KEY,
    seller VARCHAR(64) NOT NULL,
    action VARCHAR(32) NOT NULL,
    target VARCHAR(64) NOT NULL,
    before_state TEXT,
    after_state TEXT,
    at BIGINT NOT NULL
);
CREATE INDEX vm_audit_by_seller ON vm_audit (seller, at);
CREATE TABLE vm_settings (
    name VARCHAR(64) NOT NULL PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE INDEX vm_machines_by_owner ON vm_machines (owner);
CREATE INDEX vm_orders_by_machine ON vm_orders (inner_code, created_at);
";

/// Orders with a refund, found by the sweep without reading the others.
pub(super) const SCHEMA_V4: &str = "
CREATE INDEX vm_orders_by_refund ON vm_orders (refund_no);
";

/// Orders record their seller (the machine's owner when the order was made): a refund is the
/// order's seller's to make, whoever owns the machine later. Orders made before are given the
/// machine's owner of now, the best that is known. An order shows an abnormal refund (the
/// money could not reach the buyer) with what to do. A seller's session epoch moves on logout:
/// every session of that seller ends, its open dashboards included.
pub(super) const SCHEMA_V5: &str = "
ALTER TABLE vm_sellers ADD COLUMN session_epoch BIGINT NOT NULL DEFAULT 0;
ALTER TABLE vm_orders ADD COLUMN seller VARCHAR(64);
ALTER TABLE vm_orders ADD COLUMN refund_issue TEXT;
UPDATE vm_orders SET seller = (SELECT owner FROM vm_machines m WHERE m.inner_code = vm_orders.inner_code);
CREATE INDEX vm_orders_by_seller ON vm_orders (seller, created_at);
";

/// Operators: sellers who see the whole merchant account's reconciliation against the
/// providers' bills. The demo seller is one.
pub(super) const SCHEMA_V6: &str = "
ALTER TABLE vm_sellers ADD COLUMN operator BIGINT NOT NULL DEFAULT 0;
UPDATE vm_sellers SET operator = 1 WHERE demo = 1;
";

/// Consumer complaints (WeChat Pay API v3), each beside its order and that order's seller: what
/// the payer wrote and asked, where WeChat has it, whether the seller must act.
pub(super) const SCHEMA_V7: &str = "
CREATE TABLE vm_complaints (
    complaint_id VARCHAR(64) NOT NULL PRIMARY KEY,
    order_no VARCHAR(32),
    seller VARCHAR(64),
    state VARCHAR(16) NOT NULL,
    needs_action BIGINT NOT NULL,
    summary TEXT NOT NULL,
    received_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX vm_complaints_by_seller ON vm_complaints (seller, received_at);
";

/// Sellers' WeChat (one each, one seller each) and the QR scans that bind it or log in with it.
pub(super) const SCHEMA_V8: &str = "
CREATE TABLE vm_seller_wechat (
    open_id VARCHAR(128) NOT NULL PRIMARY KEY,
    seller VARCHAR(64) NOT NULL,
    bound_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX vm_seller_wechat_by_seller ON vm_seller_wechat (seller);
CREATE TABLE vm_seller_scans (
    scan_id VARCHAR(64) NOT NULL PRIMARY KEY,
    purpose VARCHAR(8) NOT NULL,
    browser_hash VARCHAR(64) NOT NULL,
    phone_hash VARCHAR(64),
    seller VARCHAR(64),
    open_id VARCHAR(128),
    status VARCHAR(12) NOT NULL,
    reason TEXT,
    expires_at BIGINT NOT NULL
);
";

/// Every migration, in order.
pub(super) const MIGRATIONS: &[(i64, &str, &str)] = &[
    (1, "machines, skus, slots, orders", SCHEMA_V1),
    (2, "demo machines", SEED_V2),
    (
        3,
        "sellers, audit, machine owners and secrets, settings",
        SCHEMA_V3,
    ),
    (4, "orders by refund number", SCHEMA_V4),
    (
        5,
        "orders' sellers, refund issues, seller session epochs",
        SCHEMA_V5,
    ),
    (6, "operators", SCHEMA_V6),
    (7, "complaints", SCHEMA_V7),
    (8, "sellers' WeChat and its scans", SCHEMA_V8),
];
