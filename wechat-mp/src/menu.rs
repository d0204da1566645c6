//! The Official Account's custom menu: at most 3 buttons, each with at most 5 sub-buttons.

use serde::{Deserialize, Serialize};

use crate::client::Auth;
use crate::{Client, Error};

/// A custom menu.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Menu {
    /// The top-level buttons (1 to 3).
    pub button: Vec<Button>,
}

/// A menu button: an action (`type` with `key` / `url` / Mini Program target) or a parent of
/// sub-buttons.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Button {
    /// The label.
    pub name: String,
    /// `click`, `view`, `miniprogram`, `scancode_push`… (absent on a parent).
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// The event key (`click` buttons).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// The page (`view` buttons; the fallback page of `miniprogram` buttons).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// The Mini Program app id (`miniprogram` buttons).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub appid: Option<String>,
    /// The Mini Program page (`miniprogram` buttons).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pagepath: Option<String>,
    /// Sub-buttons (1 to 5) of a parent.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sub_button: Vec<Button>,
}

impl Button {
    fn action(name: impl Into<String>, kind: &str) -> Self {
        Button {
            name: name.into(),
            kind: Some(kind.to_owned()),
            key: None,
            url: None,
            appid: None,
            pagepath: None,
            sub_button: Vec::new(),
        }
    }

    /// A button that sends a `CLICK` event with `key`.
    pub fn click(name: impl Into<String>, key: impl Into<String>) -> Self {
        Button {
            key: Some(key.into()),
            ..Button::action(name, "click")
        }
    }

    /// A button that opens `url`.
    pub fn view(name: impl Into<String>, url: impl Into<String>) -> Self {
        Button {
            url: Some(url.into()),
            ..Button::action(name, "view")
        }
    }

    /// A button that opens a Mini Program page (`url` is shown by clients without Mini
    /// Program support).
    pub fn mini_program(
        name: impl Into<String>,
        appid: impl Into<String>,
        pagepath: impl Into<String>,
        url: impl Into<String>,
    ) -> Self {
        Button {
            appid: Some(appid.into()),
            pagepath: Some(pagepath.into()),
            url: Some(url.into()),
            ..Button::action(name, "miniprogram")
        }
    }

    /// A parent of `children`.
    pub fn parent(name: impl Into<String>, children: Vec<Button>) -> Self {
        Button {
            name: name.into(),
            kind: None,
            key: None,
            url: None,
            appid: None,
            pagepath: None,
            sub_button: children,
        }
    }
}

impl Menu {
    /// Checks WeChat's limits before sending.
    pub fn validate(&self) -> Result<(), Error> {
        if self.button.is_empty() || self.button.len() > 3 {
            return Err(Error::Config("a menu has 1 to 3 buttons".into()));
        }
        for b in &self.button {
            if b.sub_button.len() > 5 {
                return Err(Error::Config(format!(
                    "button {:?} has more than 5 sub-buttons",
                    b.name
                )));
            }
            if b.kind.is_none() && b.sub_button.is_empty() {
                return Err(Error::Config(format!(
                    "button {:?} has no action and no sub-buttons",
                    b.name
                )));
            }
            if b.sub_button
                .iter()
                .any(|s| !s.sub_button.is_empty() || s.kind.is_none())
            {
                return Err(Error::Config(format!(
                    "sub-buttons of {:?} must be actions",
                    b.name
                )));
            }
        }
        Ok(())
    }
}

#[derive(Deserialize)]
struct MenuReply {
    menu: Menu,
}

#[derive(Deserialize)]
struct Empty {}

impl Client {
    /// Replaces the custom menu.
    pub async fn create_menu(&self, menu: &Menu) -> Result<(), Error> {
        menu.validate()?;
        self.post::<Empty, _>("/cgi-bin/menu/create", &[], menu, Auth::AccessToken)
            .await
            .map(|_| ())
    }

    /// The current custom menu.
    pub async fn menu(&self) -> Result<Menu, Error> {
        let reply: MenuReply = self
            .get("/cgi-bin/menu/get", &[], Auth::AccessToken)
            .await?;
        Ok(reply.menu)
    }

    /// Deletes the custom menu.
    pub async fn delete_menu(&self) -> Result<(), Error> {
        self.get::<Empty>("/cgi-bin/menu/delete", &[], Auth::AccessToken)
            .await
            .map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validates_limits() {
        let ok = Menu {
            button: vec![
                Button::click("Help", "MENU_HELP"),
                Button::parent(
                    "Shop",
                    vec![Button::view("Orders", "https://shop.example/orders")],
                ),
            ],
        };
        ok.validate().unwrap();
        let v = serde_json::to_value(&ok).unwrap();
        assert_eq!(v["button"][0]["type"], "click");
        assert!(v["button"][1].get("type").is_none());
        assert_eq!(
            v["button"][1]["sub_button"][0]["url"],
            "https://shop.example/orders"
        );

        let too_many = Menu {
            button: (0..4)
                .map(|i| Button::click(format!("b{i}"), "k"))
                .collect(),
        };
        assert!(too_many.validate().is_err());
        let empty_parent = Menu {
            button: vec![Button::parent("x", vec![])],
        };
        assert!(empty_parent.validate().is_err());
    }
}
