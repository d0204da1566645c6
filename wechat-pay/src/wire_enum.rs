//! `wire_enum!`: an enum of WeChat's wire codes that keeps unknown values instead of failing,
//! because WeChat adds codes without notice and a new code must never make a paid order
//! undecodable.

/// Declares `enum $name { Variants…, Other(String) }` with `from_wire`, `as_str`, `Display`, an
/// infallible `FromStr` and `Deserialize`.
macro_rules! wire_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $( $(#[$doc:meta])* $variant:ident => $wire:literal, )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum $name {
            $( $(#[$doc])* $variant, )*
            /// A value this crate does not know yet, kept as received.
            Other(String),
        }

        impl $name {
            /// Reads a wire value; unknown values become `Other`.
            pub fn from_wire(value: &str) -> Self {
                match value {
                    $( $wire => $name::$variant, )*
                    other => $name::Other(other.to_owned()),
                }
            }

            /// The wire value.
            pub fn as_str(&self) -> &str {
                match self {
                    $( $name::$variant => $wire, )*
                    $name::Other(s) => s,
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $name {
            type Err = std::convert::Infallible;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Ok($name::from_wire(s))
            }
        }

        /// From its wire string (JSON APIs); unknown values become `Other`.
        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                <String as serde::Deserialize>::deserialize(d).map(|s| $name::from_wire(&s))
            }
        }
    };
}

pub(crate) use wire_enum;
