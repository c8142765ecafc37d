use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use super::*;

const USER: &str = "alerts@example.com";
const PASSWORD: &str = "correct horse battery staple";

/// A line-at-a-time SMTP client, enough to walk the sim through each command.
struct Client {
    reader: BufReader<Box<dyn Io>>,
}

impl Client {
    async fn connect(sim: &SmtpSim) -> Client {
        let stream = TcpStream::connect(sim.addr()).await.unwrap();
        let mut client = Client {
            reader: BufReader::new(Box::new(stream)),
        };
        assert!(client.read_reply().await.starts_with("220 "));
        client
    }

    async fn connect_tls(sim: &SmtpSim, certificates: &SimCertificates) -> Client {
        let stream = TcpStream::connect(sim.addr()).await.unwrap();
        let tls = connector(certificates)
            .connect(server_name(), stream)
            .await
            .unwrap();
        let mut client = Client {
            reader: BufReader::new(Box::new(tls)),
        };
        assert!(client.read_reply().await.starts_with("220 "));
        client
    }

    async fn starttls(&mut self, certificates: &SimCertificates) {
        assert!(self.command("STARTTLS").await.starts_with("220 "));
        let io = std::mem::replace(
            &mut self.reader,
            BufReader::new(Box::new(tokio::io::duplex(1).0)),
        )
        .into_inner();
        let tls = connector(certificates)
            .connect(server_name(), io)
            .await
            .unwrap();
        self.reader = BufReader::new(Box::new(tls));
    }

    /// Every line of one reply, joined with `\n`.
    async fn read_reply(&mut self) -> String {
        let mut lines = Vec::new();
        loop {
            let mut line = String::new();
            if self.reader.read_line(&mut line).await.unwrap() == 0 {
                return "(closed)".to_owned();
            }
            let line = line.trim_end().to_owned();
            let last = line.as_bytes().get(3) != Some(&b'-');
            lines.push(line);
            if last {
                return lines.join("\n");
            }
        }
    }

    async fn send(&mut self, line: &str) {
        let stream = self.reader.get_mut();
        stream.write_all(line.as_bytes()).await.unwrap();
        stream.write_all(b"\r\n").await.unwrap();
        stream.flush().await.unwrap();
    }

    async fn command(&mut self, line: &str) -> String {
        self.send(line).await;
        self.read_reply().await
    }
}

fn server_name() -> rustls::pki_types::ServerName<'static> {
    rustls::pki_types::ServerName::try_from("localhost").unwrap()
}

fn connector(certificates: &SimCertificates) -> tokio_rustls::TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    for certificate in CertificateDer::pem_slice_iter(certificates.ca_pem.as_bytes()) {
        roots.add(certificate.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

fn login() -> Option<(String, String)> {
    Some((USER.to_owned(), PASSWORD.to_owned()))
}

fn plain_auth(user: &str, password: &str) -> String {
    BASE64.encode(format!("\0{user}\0{password}"))
}

#[tokio::test]
async fn a_plain_session_logs_in_with_auth_login_and_records_the_unstuffed_message() {
    let sim = SmtpSim::start(SmtpSimOptions {
        security: SmtpSimSecurity::Plain,
        login: login(),
    })
    .await
    .unwrap();
    let mut client = Client::connect(&sim).await;
    let ehlo = client.command("EHLO client.test").await;
    assert!(ehlo.contains("250-AUTH PLAIN LOGIN") || ehlo.contains("250 AUTH PLAIN LOGIN"));
    assert!(!ehlo.contains("STARTTLS"), "{ehlo}");
    assert!(
        client
            .command("MAIL FROM:<a@example.com>")
            .await
            .starts_with("530 "),
        "no MAIL before AUTH"
    );
    assert_eq!(client.command("AUTH LOGIN").await, "334 VXNlcm5hbWU6");
    assert_eq!(
        client.command(&BASE64.encode(USER)).await,
        "334 UGFzc3dvcmQ6"
    );
    assert!(
        client
            .command(&BASE64.encode(PASSWORD))
            .await
            .starts_with("235 ")
    );
    assert!(client.command("NOOP").await.starts_with("250 "));
    assert!(
        client
            .command("MAIL FROM:<a@example.com> BODY=8BITMIME")
            .await
            .starts_with("250 ")
    );
    assert!(client.command("RSET").await.starts_with("250 "));
    assert!(
        client.command("DATA").await.starts_with("503 "),
        "RSET ended the transaction"
    );
    assert!(
        client
            .command("MAIL FROM:<a@example.com>")
            .await
            .starts_with("250 ")
    );
    assert!(
        client
            .command("RCPT TO:<b@example.com>")
            .await
            .starts_with("250 ")
    );
    assert!(
        client
            .command("RCPT TO:<c@example.com>")
            .await
            .starts_with("250 ")
    );
    assert!(client.command("DATA").await.starts_with("354 "));
    client.send("Subject: dots").await;
    client.send("").await;
    client.send("..a line that began with a dot").await;
    client.send("...").await;
    let queued = client.command(".").await;
    assert!(
        queued.starts_with("250 2.0.0 Ok: queued as SIM000001"),
        "{queued}"
    );
    assert!(client.command("QUIT").await.starts_with("221 "));

    let messages = sim.wait_for_messages(1, Duration::from_secs(5)).await;
    assert_eq!(messages.len(), 1);
    let message = &messages[0];
    assert_eq!(message.mail_from, "a@example.com");
    assert_eq!(message.rcpt_to, ["b@example.com", "c@example.com"]);
    assert_eq!(
        message.data,
        "Subject: dots\r\n\r\n.a line that began with a dot\r\n..\r\n"
    );
    assert_eq!(message.authenticated_as.as_deref(), Some(USER));
    assert!(!message.tls);
    assert_eq!(message.header("subject").as_deref(), Some("dots"));
    assert_eq!(sim.transactions(), 2, "the refused MAIL is not one");
    assert_eq!(
        sim.commands()[0],
        [
            "EHLO", "MAIL", "AUTH", "NOOP", "MAIL", "RSET", "DATA", "MAIL", "RCPT", "RCPT", "DATA",
            "QUIT"
        ]
    );
}

#[tokio::test]
async fn a_wrong_password_gets_535_and_is_counted() {
    let sim = SmtpSim::start(SmtpSimOptions {
        security: SmtpSimSecurity::Plain,
        login: login(),
    })
    .await
    .unwrap();
    let mut client = Client::connect(&sim).await;
    client.command("EHLO client.test").await;
    let refused = client
        .command(&format!("AUTH PLAIN {}", plain_auth(USER, "wrong")))
        .await;
    assert_eq!(refused, "535 5.7.8 Authentication credentials invalid");
    // PLAIN without an initial response asks for it.
    assert_eq!(client.command("AUTH PLAIN").await, "334");
    assert!(
        client
            .command(&plain_auth(USER, PASSWORD))
            .await
            .starts_with("235 ")
    );
    assert_eq!(sim.auth_failures(), 1);
}

#[tokio::test]
async fn faults_strike_the_next_transactions_then_stop() {
    let sim = SmtpSim::start(SmtpSimOptions::default()).await.unwrap();
    sim.inject(SmtpFault {
        stage: SmtpStage::Mail,
        code: 451,
        count: 1,
    });
    sim.inject(SmtpFault {
        stage: SmtpStage::Data,
        code: 550,
        count: 1,
    });
    let mut client = Client::connect(&sim).await;
    let ehlo = client.command("EHLO client.test").await;
    assert!(!ehlo.contains("AUTH"), "no login configured: {ehlo}");
    assert_eq!(
        client.command("MAIL FROM:<a@example.com>").await,
        "451 4.3.0 Temporary local problem, try again later"
    );
    assert!(
        client
            .command("MAIL FROM:<a@example.com>")
            .await
            .starts_with("250 ")
    );
    client.command("RCPT TO:<b@example.com>").await;
    client.command("DATA").await;
    client.send("Subject: x").await;
    assert_eq!(client.command(".").await, "550 5.1.1 Mailbox unavailable");
    assert!(sim.messages().is_empty(), "a rejected message is not kept");
    assert!(
        client
            .command("MAIL FROM:<a@example.com>")
            .await
            .starts_with("250 ")
    );
    client.command("RCPT TO:<b@example.com>").await;
    client.command("DATA").await;
    client.send("Subject: y").await;
    assert!(client.command(".").await.starts_with("250 "));
    assert_eq!(sim.messages().len(), 1);

    // 421 closes the connection.
    sim.inject(SmtpFault {
        stage: SmtpStage::Mail,
        code: 421,
        count: 1,
    });
    assert!(
        client
            .command("MAIL FROM:<a@example.com>")
            .await
            .starts_with("421 ")
    );
    assert_eq!(client.read_reply().await, "(closed)");
}

#[tokio::test]
async fn starttls_comes_before_auth_and_mail() {
    let certificates = SimCertificates::generate(&["localhost", "127.0.0.1"]).unwrap();
    let sim = SmtpSim::start(SmtpSimOptions {
        security: SmtpSimSecurity::Starttls(certificates.clone()),
        login: login(),
    })
    .await
    .unwrap();
    let mut client = Client::connect(&sim).await;
    let ehlo = client.command("EHLO client.test").await;
    assert!(
        ehlo.contains("STARTTLS") && !ehlo.contains("AUTH"),
        "{ehlo}"
    );
    assert!(
        client
            .command(&format!("AUTH PLAIN {}", plain_auth(USER, PASSWORD)))
            .await
            .starts_with("530 ")
    );
    assert!(
        client
            .command("MAIL FROM:<a@example.com>")
            .await
            .starts_with("530 ")
    );
    client.starttls(&certificates).await;
    let ehlo = client.command("EHLO client.test").await;
    assert!(
        ehlo.contains("AUTH PLAIN LOGIN") && !ehlo.contains("STARTTLS"),
        "{ehlo}"
    );
    assert!(
        client
            .command(&format!("AUTH PLAIN {}", plain_auth(USER, PASSWORD)))
            .await
            .starts_with("235 ")
    );
    client.command("MAIL FROM:<a@example.com>").await;
    client.command("RCPT TO:<b@example.com>").await;
    client.command("DATA").await;
    client.send("Subject: over tls").await;
    assert!(client.command(".").await.starts_with("250 "));
    let messages = sim.wait_for_messages(1, Duration::from_secs(5)).await;
    assert!(messages[0].tls);
}

#[tokio::test]
async fn implicit_tls_speaks_tls_from_the_first_byte() {
    let certificates = SimCertificates::generate(&["localhost"]).unwrap();
    let sim = SmtpSim::start(SmtpSimOptions {
        security: SmtpSimSecurity::ImplicitTls(certificates.clone()),
        login: None,
    })
    .await
    .unwrap();
    let mut client = Client::connect_tls(&sim, &certificates).await;
    let ehlo = client.command("EHLO client.test").await;
    assert!(!ehlo.contains("STARTTLS"), "{ehlo}");
    client.command("MAIL FROM:<a@example.com>").await;
    client.command("RCPT TO:<b@example.com>").await;
    client.command("DATA").await;
    client.send("Subject: implicit").await;
    assert!(client.command(".").await.starts_with("250 "));
    assert!(sim.wait_for_messages(1, Duration::from_secs(5)).await[0].tls);
}

#[test]
fn headers_and_bodies_are_decoded() {
    let message = SmtpMessage {
        received_at: Utc::now(),
        mail_from: String::new(),
        rcpt_to: Vec::new(),
        data: "Subject: =?utf-8?b?8J+UtCBkb3du?=\r\n =?utf-8?q?_again?=\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nsoft=\r\n break =3D =F0=9F=94=B4\r\n".to_owned(),
        tls: false,
        authenticated_as: None,
    };
    assert_eq!(message.header("SUBJECT").as_deref(), Some("🔴 down again"));
    assert_eq!(message.text_body(), "soft break = 🔴\r\n");
}
