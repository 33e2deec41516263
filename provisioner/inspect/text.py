"""Every sentence `provision inspect` says, in English and Japanese, in one table.

A sentence is a key plus values; values may themselves be sentences (a clause inside a verdict).
Keeping both languages side by side makes a missing translation a test failure, not a surprise.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Text:
    en: str
    ja: str

    def __call__(self, lang: str) -> str:
        return self.ja if lang == "ja" else self.en


CATALOGUE: dict[str, tuple[str, str]] = {
    # verdicts
    "pass-dkim": (
        "Genuine: From says {domain}, and the message carries a valid signature of {signer} (DKIM), which belongs to {domain}.",
        "本物です: 差出人 (From) は {domain} で、{domain} 側の {signer} による有効な電子署名 (DKIM) が付いています。",
    ),
    "pass-spf": (
        "Genuine: From says {domain}, and the mail was sent by a server that {envelope} authorises (SPF); {envelope} belongs to {domain}.",
        "本物です: 差出人 (From) は {domain} で、{domain} 側のドメイン {envelope} が許可したサーバーから送られています (SPF)。",
    ),
    "pass-recorded": (
        "Genuine: From says {domain}, and {authserv}, a server you trust, recorded that the message passed DMARC for {domain}.",
        "本物です: 差出人 (From) は {domain} で、信頼するサーバー {authserv} が {domain} の DMARC 検証に合格したと記録しています。",
    ),
    "undecided-recorded": (
        "Cannot decide: {authserv}, a server you trust, recorded no {missing} result for this message; --verify checks it now.",
        "判定できません: 信頼するサーバー {authserv} はこのメールの {missing} の結果を記録していません。--verify で今検証できます。",
    ),
    "undecided-partial": (
        "Cannot call it genuine: the signature of {signer} verifies, but it does not cover {what}: a copy of a signed message can be re-sent with those changed.",
        "本物とは言えません: {signer} の署名は正しいものの、{what} を対象にしていません: 署名されたメールを写して、その部分を変えて再送できます。",
    ),
    "undecided-no-body": (
        "Cannot decide: the signature matching the From domain needs the body, and only the header section was given.",
        "判定できません: 差出人のドメインの署名を検証するには本文が必要ですが、ヘッダー部分だけが与えられました。",
    ),
    "undecided-spf-skipped": (
        "Cannot decide: no signature of the From domain verifies, and SPF could not be checked (no envelope sender or no sending address recorded).",
        "判定できません: 差出人のドメインの署名で検証できるものがなく、SPF も検証できません (エンベロープの送信者か送信元アドレスの記録がありません)。",
    ),
    "undecided-several-from": (
        "Cannot decide: the message names several From addresses or fields; a mail program shows only one, and no single one can be vouched for.",
        "判定できません: 差出人 (From) のアドレスかヘッダーが複数あります。メールソフトが表示するのは 1 つだけで、どれか 1 つを保証することはできません。",
    ),
    "undecided-dmarc": (
        "Cannot decide: the DMARC result for {domain} is {result} (a broken or doubtful record), and neither SPF nor DKIM passes for {domain}.",
        "判定できません: {domain} の DMARC の結果は {result} (レコードが壊れているか不確か) で、{domain} について SPF も DKIM も合格していません。",
    ),
    "undecided-doubled": (
        "Cannot call it genuine: the message has {fields} twice; the authentication for {domain} may cover the copy your mail program does not show.",
        "本物とは言えません: {fields} が 2 つあります。{domain} の認証結果は、メールソフトが表示しない方を対象にしている可能性があります。",
    ),
    "submitted-with-login": (
        "It was handed in by a user who logged in to {by} (SMTP AUTH).",
        "{by} にログインした利用者が送信したメールです (SMTP 認証)。",
    ),
    "fail": (
        "From says {domain}, but {sent} and {signed}.",
        "差出人 (From) は {domain} ですが、{sent}。さらに、{signed}。",
    ),
    "sent-by-other-org": (
        "the mail was sent by a server of {envelope}, which is not {domain_hint},",
        "送信したのは {envelope} のサーバーで、差出人とは別の組織です",
    ),
    "sent-by-unrelated": (
        "the mail was sent by an unrelated server ({address})",
        "差出人と無関係のサーバー ({address}) から送られています",
    ),
    "sent-by-unknown": (
        "nothing shows that {domain} allowed the server that sent it",
        "送信サーバーを {domain} が許可している証拠がありません",
    ),
    "no-signature": ("no aligned signature exists", "差出人のドメインの電子署名 (DKIM) もありません"),
    "signed-by-others": (
        "no aligned signature exists (it is signed only by {signers})",
        "差出人のドメインの電子署名はありません ({signers} の署名だけです)",
    ),
    "signature-broken": (
        "the signature of {signer} does not verify: {reason}",
        "{signer} の電子署名は検証に失敗しました: {reason}",
    ),
    "reason-body-changed": ("the body was changed after signing", "署名の後で本文が変更されています"),
    "reason-headers-changed": ("a signed header was changed after signing", "署名の後で署名対象のヘッダーが変更されています"),
    "reason-no-key": ("its key is not published", "公開鍵が DNS に公開されていません"),
    "reason-revoked": ("its key was revoked", "公開鍵は失効しています"),
    "reason-bad-key": ("its published key cannot be used", "公開鍵が使えない形式です"),
    "reason-bad-signature": ("the signature field is malformed", "署名ヘッダーの形式が壊れています"),
    "reason-no-body": ("the body was not given", "本文が与えられていません"),
    "reason-dns-failed": ("the key could not be fetched", "公開鍵を取得できませんでした"),
    "reason-recorded": ("the receiving server recorded {result}", "受信サーバーの記録は {result} です"),
    "policy-reject": (
        "{domain} asks receivers to reject such mail (DMARC p=reject).",
        "{domain} はこのようなメールを受信拒否するよう求めています (DMARC p=reject)。",
    ),
    "policy-quarantine": (
        "{domain} asks receivers to treat such mail as spam (DMARC p=quarantine).",
        "{domain} はこのようなメールを迷惑メールとして扱うよう求めています (DMARC p=quarantine)。",
    ),
    "policy-none": (
        "{domain} publishes DMARC p=none: receivers deliver such mail anyway, so the judgement is yours.",
        "{domain} の DMARC は p=none で、受信側はそのまま配送します。判断はあなたに委ねられています。",
    ),
    "no-dmarc-record": (
        "{domain} publishes no DMARC policy, so every receiver decides by itself.",
        "{domain} は DMARC ポリシーを公開していないため、受信側がそれぞれ判断します。",
    ),
    "own-domain": (
        "{domain} is one of your own domains: this is spoofing, or mail that went around your servers.",
        "{domain} はあなた自身のドメインです: なりすましか、あなたのサーバーを経由せずに送られたメールです。",
    ),
    "own-domain-tighten": (
        "To have receivers refuse mail like this, publish DMARC p=reject for {domain}: set policy.dmarc.p: reject in the site file (or under the domain), then provision dns and provision check.",
        "このようなメールを受信側に拒否させるには、{domain} の DMARC を p=reject にします: サイトファイルで policy.dmarc.p: reject (またはドメインごとの設定) にして、provision dns と provision check を実行してください。",
    ),
    "own-domain-key-missing": (
        "The signature names a key of {domain} that is not published (or was withdrawn): run provision check on the site to compare the DNS with your keys.",
        "署名が示す {domain} の公開鍵が DNS にありません (または撤回済みです): provision check でサイトの DNS と鍵を照合してください。",
    ),
    "unverified": (
        "Not verified: no Authentication-Results from a server you trust (--trust, --site), and --verify was not given.",
        "未検証: 信頼するサーバーが付けた認証結果 (Authentication-Results) がなく (--trust, --site)、--verify も指定されていません。",
    ),
    "dns-failed": (
        "Cannot decide whether this mail is from {domain}: a DNS lookup failed ({detail}). Try again later.",
        "{domain} からのメールかどうか判定できません: DNS の問い合わせに失敗しました ({detail})。時間をおいて再実行してください。",
    ),
    "no-from-domain": (
        "Cannot decide: the message has no From address with a domain.",
        "判定できません: 差出人 (From) にドメイン付きのアドレスがありません。",
    ),
    # facts shown with an unknown verdict
    "envelope-aligned": (
        "The envelope sender's domain {envelope} belongs to the From domain {domain}.",
        "エンベロープの送信者 (Return-Path) のドメイン {envelope} は、差出人 (From) のドメイン {domain} と同じ組織です。",
    ),
    "envelope-not-aligned": (
        "The envelope sender's domain {envelope} is not the From domain {domain}: SPF cannot vouch for the From address.",
        "エンベロープの送信者 (Return-Path) のドメイン {envelope} は差出人 (From) のドメイン {domain} と別の組織です: SPF は差出人を保証しません。",
    ),
    "null-sender": (
        "The envelope sender is empty (<>): a bounce or an automatic reply.",
        "エンベロープの送信者は空 (<>) です: エラーメールか自動応答です。",
    ),
    "signature-aligned-unverified": (
        "A signature of {signer} is present (it matches the From domain); --verify checks it.",
        "差出人のドメインに合う {signer} の電子署名があります。--verify で検証できます。",
    ),
    "signed-by-others-unverified": (
        "Signatures are present only for {signers}, not for {domain}.",
        "電子署名は {signers} のものだけで、{domain} のものはありません。",
    ),
    "no-signature-at-all": ("The message carries no DKIM signature.", "電子署名 (DKIM) は付いていません。"),
    # notes
    "mbox-line": ("Line 1 is an mbox 'From ' separator; it was skipped.", "1 行目は mbox の 'From ' 区切り行なので読み飛ばしました。"),
    "cut-off": (
        "The input ends inside the header section (line {line}) without a line end: it may be cut off.",
        "入力がヘッダーの途中 ({line} 行目) で改行なしに終わっています: 途中で切れている可能性があります。",
    ),
    "headers-only": (
        "Only the header section was given: DKIM signatures cannot be checked without the body.",
        "ヘッダー部分だけが与えられました: 本文がないため DKIM 署名は検証できません。",
    ),
    "body-cut-off": (
        "The body seems cut off: its closing MIME boundary is missing. A DKIM body hash fails on a cut message.",
        "本文が途中で切れているようです: MIME の終わりの区切り行がありません。切れたメールでは DKIM の本文ハッシュが一致しません。",
    ),
    "hop-bad-time": ("no readable time ({text})", "時刻が読めません ({text})"),
    "hop-no-time": ("no time", "時刻がありません"),
    "hop-chronology": (
        "breaks chronology: {span} earlier than the hop before it (inserted or forged, or a clock far off)",
        "時刻の順序が逆です: 前の中継より {span} 前 (偽造・挿入された行か、時計が大きくずれています)",
    ),
    "hop-skew": ("{span} earlier than the hop before it: the two clocks differ slightly", "前の中継より {span} 前: 2 台の時計が少しずれています"),
    "hop-no-ptr": (
        "{ip} has no reverse DNS name (PTR): mail from it is often refused",
        "{ip} には逆引き (PTR) がありません: このようなサーバーからのメールはよく拒否されます",
    ),
    "hop-helo-mismatch": (
        "said HELO {helo}, but {ip} is {name}: the server named itself differently from its address",
        "HELO では {helo} と名乗りましたが、{ip} の逆引きは {name} です: アドレスと異なる名前を名乗っています",
    ),
    "hop-no-ptr-now": (
        "{ip} has no reverse DNS name (PTR) now: mail from it is often refused",
        "{ip} には現在逆引き (PTR) がありません: このようなサーバーからのメールはよく拒否されます",
    ),
    "hop-not-confirmed": (
        "{ip} reverse-resolves to {names}, but no such name resolves back to {ip} (not forward-confirmed)",
        "{ip} の逆引きは {names} ですが、その名前の正引きが {ip} になりません (正引きと逆引きが一致しません)",
    ),
    "ar-untrusted": (
        "authserv-id not trusted (--trust or --site names the servers you trust)",
        "信頼しない authserv-id です (--trust か --site で信頼するサーバーを指定します)",
    ),
    "ar-forged": (
        "claims {authserv}, but it sits below the Received line where the message entered your servers: it came with the message (forged?)",
        "{authserv} を名乗っていますが、メールがあなたのサーバーに入った時の Received 行より下にあります: メールに最初から含まれていたもの (偽造?) です",
    ),
    "ar-no-received": (
        "claims {authserv}, a server you trust, but no Received line of a server you trust is in the message (give that server's host name, as its Received lines show it, to --trust too)",
        "信頼する {authserv} を名乗っていますが、信頼するサーバーの Received 行がメールにありません (Received 行に出るそのサーバーのホスト名も --trust に指定してください)",
    ),
    "ar-unreadable": ("authserv-id trusted, but the field cannot be parsed", "信頼する authserv-id ですが、内容を解析できません"),
    "ar-trusted": ("added by a server you trust", "信頼するサーバーが付けたもの"),
    "no-from": ("The message has no From field (RFC 5322 §3.6 requires one).", "差出人 (From) ヘッダーがありません (RFC 5322 §3.6 で必須)。"),
    "several-from-fields": (
        "The message has {count} From fields; RFC 5322 §3.6 allows one. Receivers often reject such mail.",
        "差出人 (From) ヘッダーが {count} 個あります。RFC 5322 §3.6 では 1 個だけです。受信拒否されることがよくあります。",
    ),
    "several-from-domains": (
        "From names several domains ({domains}); DMARC can judge only one (RFC 7489 §6.6.1).",
        "差出人 (From) に複数のドメイン ({domains}) があります。DMARC は 1 つしか判定できません (RFC 7489 §6.6.1)。",
    ),
    "ar-dmarc-other-from": (
        "The trusted server's DMARC result is for From {recorded}, not for {domain}: the From field was changed after delivery, so that result was not used.",
        "信頼するサーバーの DMARC の結果は From {recorded} に対するもので、{domain} のものではありません: 配送後に From が変えられたため、その結果は使いません。",
    ),
    "dkim-unsigned": (
        "The signature of {signer} does not cover {fields}: they may have been added or changed after signing.",
        "{signer} の署名は {fields} を対象にしていません: 署名の後で追加・変更された可能性があります。",
    ),
    "dkim-appended": (
        "The signature of {signer} covers only part of the body (l=): {count} more bytes follow that anybody could have appended.",
        "{signer} の署名は本文の一部だけを対象にしています (l=): その後の {count} バイトは誰でも追加できた部分です。",
    ),
    "return-path-below-border": (
        "The Return-Path field stands below the Received line where the message entered your servers: it came with the message, so it was ignored.",
        "Return-Path がメールがあなたのサーバーに入った時の Received 行より下にあります: 最初からメールに含まれていたものなので無視しました。",
    ),
    "duplicate-fields": (
        "The message has {fields} more than once (RFC 5322 §3.6 allows one): a mail program shows one copy, and a signature may cover the other.",
        "{fields} が複数あります (RFC 5322 §3.6 では 1 個だけ): メールソフトが表示するのは片方だけで、署名が別の方を対象にしている可能性があります。",
    ),
    "no-return-path": (
        "No Return-Path: the envelope sender was not recorded (the message was saved before final delivery?).",
        "Return-Path がありません: エンベロープの送信者が記録されていません (最終配送の前に保存されたメール?)。",
    ),
    "sender-differs": (
        "Sender {sender} is not in the From domain {domain}: someone sent on behalf of the author (mailing list, assistant, or a spoofer).",
        "Sender {sender} は差出人 (From) のドメイン {domain} と異なります: 代理送信です (メーリングリスト、代理人、またはなりすまし)。",
    ),
    "border-assumed": (
        "Assumed that the newest Received line naming an address was written by your server ({by}); --site or --trust makes this certain.",
        "アドレスを含む最新の Received 行をあなたのサーバー ({by}) が書いたものと仮定しました。--site か --trust で確実になります。",
    ),
    "border-private": (
        "The message entered at {ip}, a private address you have not declared: a NAT or load balancer there hides the real sender, and no line below that hop is believed. If {ip} is one of your own mail servers, declare it: --trust-address {ip} (or list the host in --site).",
        "メールは {ip} (宣言されていないプライベートアドレス) から入っています: そこにある NAT やロードバランサーは本当の送信元を隠すため、その下の行は信用しません。{ip} があなたのメールサーバーなら --trust-address {ip} で宣言してください (または --site にそのホストを記載)。",
    ),
    "spf-without-return-path": (
        "No Return-Path and no recorded envelope sender, so SPF was not checked (DMARC can then pass only by DKIM).",
        "Return-Path も記録されたエンベロープ送信者もないため、SPF は検証していません (DMARC は DKIM でのみ合格できます)。",
    ),
    "forwarder-changed-body": (
        "Mailing lists and forwarders that add a footer or rewrite the body break the signature of {signer}: the author may be genuine, but nothing proves it any more.",
        "フッターを付けたり本文を書き換えたりするメーリングリストや転送サーバーを通ると {signer} の署名は壊れます: 差出人は本物かもしれませんが、それを証明するものはありません。",
    ),
    "arc-pass": (
        "The ARC chain verifies (sealed by {sealers}). The first sealer, {first}, recorded: {results}. ARC does not change the verdict: believe it only if you trust {first}.",
        "ARC チェーンは正しく検証できました ({sealers} が封印)。最初の封印者 {first} の記録: {results}。ARC は判定を変えません: {first} を信頼する場合にだけ参考にしてください。",
    ),
    "arc-fail": (
        "The ARC chain (sealed by {sealers}) does not verify ({reason}): what it records cannot be relied on.",
        "ARC チェーン ({sealers} が封印) は検証に失敗しました ({reason}): その記録は当てになりません。",
    ),
    "results-changed": (
        "At delivery a trusted server recorded dmarc={then}; re-verified now it is {now} (a DNS record or key may have changed since).",
        "配送時に信頼するサーバーが記録した結果は dmarc={then} でしたが、今回の再検証では {now} です (その後 DNS レコードや鍵が変わった可能性があります)。",
    ),
    # input limits (message.py MAX_*): what a hostile header section gets read of
    "cap-where-one": ("{name} (line {line})", "{name} ({line} 行目)"),
    "cap-where-many": ("{count} fields, the first {name} (line {line})", "{count} 個のヘッダー (最初は {line} 行目の {name})"),
    "cap-received": (
        "The message has {count} Received lines; only the newest {limit} were read (Postfix bounces a message after 50 hops).",
        "Received 行が {count} 個あります。新しい方から {limit} 個だけを読みました (Postfix は 50 回中継されたメールを返送します)。",
    ),
    "cap-signatures": (
        "The message has {count} DKIM signatures; only the topmost {limit} were read.",
        "DKIM 署名が {count} 個あります。上から {limit} 個だけを読みました。",
    ),
    "cap-auth-results": (
        "Not read: {where}. Only the topmost {limit} Authentication-Results fields, {kb} KB in all, are read; those your servers add are on top.",
        "読んでいません: {where}。認証結果 (Authentication-Results) は上から {limit} 個、合計 {kb} KB までだけを読みます。あなたのサーバーが付けたものは一番上にあります。",
    ),
    "cap-long-field": (
        "Longer than {limit} KB: {where}. A Received line is read up to there, any other such field not at all.",
        "{limit} KB を超えています: {where}。Received 行はそこまでを読み、それ以外のヘッダーは読んでいません。",
    ),
    "cap-deep-comments": (
        "Not read: {where}: comments (parentheses) nest deeper than {limit} levels.",
        "読んでいません: {where}: コメント (括弧) の入れ子が {limit} 段を超えています。",
    ),
    "cap-encoded-words": (
        "More than {limit} encoded words (RFC 2047): {where}; the rest is shown as written.",
        "エンコードされた語 (RFC 2047) が {limit} 個を超えています: {where}。残りはそのまま表示しています。",
    ),
}


class _Values(dict):  # type: ignore[type-arg]
    def __missing__(self, key: str) -> str:
        return ""


def say(key: str, **values: object) -> Text:
    en, ja = CATALOGUE[key]
    values.setdefault("domain_hint", values.get("domain", "the From domain"))
    en_values = _Values({k: v.en if isinstance(v, Text) else v for k, v in values.items()})
    ja_values = _Values({k: v.ja if isinstance(v, Text) else v for k, v in values.items()})
    return Text(en.format_map(en_values), ja.format_map(ja_values))
