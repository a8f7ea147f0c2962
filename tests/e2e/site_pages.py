"""Fixture pages imitating how real sites put pictures on the page (issue 10, item 8): the markup
patterns of X, new and old Reddit, Instagram, Facebook, 9GAG, Tumblr, Mastodon, Discord, Telegram
Web and Imgur/iFunny, from public knowledge of each site. Structure only: no real content, names,
styles or code of theirs; the pictures are the feed's synthetic memes.

Every element showing a picture carries `data-truth` (harmful/neutral), `data-post` (unique) and
`data-picture` (elements showing one picture in one place share it); the site's chrome (headers,
menus, composers) carries `data-chrome` and records its clicks in `window.__clicks`. Served by
FeedSite at /case/site-NAME.
"""

import html

SITES = ("x", "reddit", "old-reddit", "instagram", "facebook", "9gag", "tumblr", "mastodon", "discord", "telegram",
         "imgur")

CHROME_JS = """
window.__clicks = [];
document.addEventListener('click', (e) => {
  const chrome = e.target.closest && e.target.closest('[data-chrome]');
  if (chrome) window.__clicks.push(chrome.dataset.chrome);
}, true);
"""

SITE_CSS = """
body { font: 14px system-ui, sans-serif; margin: 0; background: #fafafa; padding-bottom: 120px; }
.top { position: sticky; top: 0; z-index: 10; height: 52px; background: #fff; border-bottom: 1px solid #ddd; display: flex;
  gap: 12px; align-items: center; padding: 0 12px; }
.composer { position: fixed; left: 0; right: 0; bottom: 0; z-index: 10; background: #fff; padding: 8px; border-top: 1px solid #ddd; }
.composer input, .composer [contenteditable] { width: 80%; height: 28px; border: 1px solid #bbb; }
.post { background: #fff; margin: 10px auto; width: 520px; padding: 8px; }
.pic { position: relative; width: 480px; height: 360px; overflow: hidden; }
.fill { position: absolute; inset: 0; width: 100%; height: 100%; background-size: cover; }
"""


class SitePages:
    """The site pages, built from a CasePages (meme URLs and attributes)."""

    def __init__(self, cases):
        self.cases = cases
        self.n_pic = 0

    def pic(self, k, seed, name):
        return self.cases.src(k, name, seed)

    def mark(self, k, post, picture, kind):
        truth = self.cases.site.memes[k][1]
        return f'data-truth="{truth}" data-post="{post}" data-picture="{picture}" data-kind="{kind}"'

    def img(self, k, seed, name, picture=None, kind="img", extra="", cls=""):
        return (f'<img class="{cls}" {self.mark(k, name, picture or name, kind)} src="{self.pic(k, seed, name)}" '
                f'alt="" {extra}>')

    def bg(self, k, seed, name, picture=None, kind="bg", cls="fill", url_name=None):
        url = self.pic(k, seed, url_name or name).replace("&amp;", "&")
        return (f'<div class="{cls}" role="img" {self.mark(k, name, picture or name, kind)} '
                f'style="background-image: url(&quot;{url}&quot;)"></div>')

    def video(self, k_poster, seed, name, src_name, extra="autoplay muted loop playsinline", cls="fill"):
        truth = "harmful" if src_name in ("flag-frames", "no-poster") else "neutral"
        poster = f' poster="{self.pic(k_poster, seed, name + "-poster")}"' if k_poster is not None else ""
        return (f'<video class="{cls}" data-truth="{truth}" data-post="{name}" data-picture="{name}" data-kind="video" '
                f'{extra}{poster} src="/v/{src_name}.webm?s={html.escape(seed)}"></video>')

    def page(self, name, body, script=""):
        return self.cases.page(f"site {name}", body, CHROME_JS + script, SITE_CSS)

    # ------------------------------------------------------------------ sites

    def x(self, seed):
        """X: a photo is a background <div> plus an invisible <img> of the same URL; GIFs are videos."""
        h, n = self.cases.harmful, self.cases.neutral

        def tweet(i, k):
            url_name = f"x-{i}"
            return f"""<article data-testid="tweet" class="post"><div>@user{i} · 2h</div><div>a post</div>
  <a href="#photo" data-testid="tweetPhoto"><div class="pic" aria-label="Image">
    {self.bg(k, seed, f"x-{i}-div", picture=url_name, url_name=url_name)}
    {self.img(k, seed, url_name, picture=url_name, extra='style="position: absolute; inset: 0; opacity: 0"', cls="fill").replace(f'data-post="{url_name}"', f'data-post="x-{i}-img"')}
  </div></a><div role="group"><button data-chrome="x-like-{i}">Like</button></div></article>"""
        body = f"""<header class="top" role="banner"><nav><a href="#" data-chrome="x-home">Home</a></nav>
  <input data-chrome="x-search" placeholder="Search"></header>
<main data-testid="primaryColumn">{tweet(0, h(0))}{tweet(1, n(0))}{tweet(2, h(1))}
  <article data-testid="tweet" class="post"><div data-testid="videoPlayer" class="pic">{self.video(n(1), seed, "x-gif", "flag-frames")}</div></article>
</main><div class="composer"><div contenteditable="true" data-chrome="x-compose" data-testid="tweetTextarea_0"></div></div>"""
        return self.page("x", body)

    def reddit(self, seed):
        """New Reddit: a blurred backdrop <img> behind the post <img>, same URL, in a custom element."""
        h, n = self.cases.harmful, self.cases.neutral

        def post(i, k):
            name = f"reddit-{i}"
            return f"""<shreddit-post class="post"><a slot="title" href="#">a title</a>
  <shreddit-aspect-ratio class="pic" style="display: block">
    {self.img(k, seed, name, picture=name, cls="fill", extra='style="filter: blur(40px); transform: scale(1.2)"').replace(f'data-post="{name}"', f'data-post="{name}-backdrop"')}
    {self.img(k, seed, name, picture=name, cls="fill", extra='style="object-fit: contain"')}
  </shreddit-aspect-ratio><button data-chrome="reddit-upvote-{i}">Upvote</button></shreddit-post>"""
        body = f"""<reddit-header-large class="top" style="display: flex"><a href="#" data-chrome="reddit-logo">reddit</a>
  <input data-chrome="reddit-search" placeholder="Search Reddit"></reddit-header-large>
<main>{post(0, h(2))}{post(1, n(2))}{post(2, h(3))}</main>"""
        return self.page("reddit", body)

    def old_reddit(self, seed):
        """Old Reddit: a small thumbnail, and the full picture in a collapsed expando opened by a button."""
        h, n = self.cases.harmful, self.cases.neutral

        def thing(i, k):
            name = f"old-{i}"
            return f"""<div class="thing link post"><a class="thumbnail" href="#"><img src="/icon.png?u={i}" width="70" height="52" alt=""></a>
  <a class="title" href="#">a link</a> <button class="expando-button" data-chrome="old-expand-{i}"
    onclick="this.parentElement.querySelector('.expando').style.display = 'block'">[+]</button>
  <div class="expando" style="display: none"><a href="#">{self.img(k, seed, name, cls="preview", extra='width="480" height="360"')}</a></div></div>"""
        body = f"""<div id="header" class="top"><a href="#" data-chrome="old-logo">reddit</a></div>
<div class="sitetable">{thing(0, h(4))}{thing(1, n(3))}{thing(2, h(5))}</div>"""
        return self.page("old-reddit", body)

    def instagram(self, seed):
        """Instagram: a transparent layer over each <img> takes the clicks; a carousel moved by transform."""
        h, n = self.cases.harmful, self.cases.neutral

        def post(i, k):
            name = f"ig-{i}"
            return f"""<article class="post"><div class="_aagu pic"><div class="_aagv">
    {self.img(k, seed, name, cls="fill", extra='style="object-fit: cover"')}</div><div class="_aagw fill"></div></div>
  <section><button data-chrome="ig-like-{i}">Like</button></section></article>"""
        slides = "".join(f'<li style="flex: 0 0 480px">{self.img(k, seed, f"ig-slide-{j}", extra="width=480 height=360")}</li>'
                         for j, k in enumerate([n(4), h(6), n(5)]))
        body = f"""<nav class="top"><a href="#" data-chrome="ig-home">Instagram</a><input data-chrome="ig-search" placeholder="Search"></nav>
<main>{post(0, h(7))}{post(1, n(6))}
  <article class="post"><div class="pic"><ul id="slides" style="display: flex; margin: 0; padding: 0; list-style: none;
    transition: transform 300ms; transform: translateX(0)">{slides}</ul></div>
    <button data-chrome="ig-next" onclick="document.getElementById('slides').style.transform = 'translateX(-480px)'">Next</button></article>
</main><div class="composer"><input data-chrome="ig-comment" placeholder="Add a comment..."></div>"""
        return self.page("instagram", body)

    def facebook(self, seed):
        """Facebook: pictures deep in nested divs of a role=feed, posts added as the feed scrolls."""
        h, n = self.cases.harmful, self.cases.neutral

        def article(i, k):
            inner = self.img(k, seed, f"fb-{i}", cls="fill")
            for _ in range(8):
                inner = f'<div class="x1n2onr6 x1lliihq">{inner}</div>'
            return f"""<div role="article" class="post"><div><strong>Someone</strong></div><div class="pic">{inner}</div>
  <div role="button" data-chrome="fb-like-{i}">Like</div></div>"""
        body = f"""<div role="banner" class="top"><a href="#" data-chrome="fb-home">facebook</a>
  <input data-chrome="fb-search" placeholder="Search Facebook"></div>
<div role="feed" id="feed">{article(0, n(7))}{article(1, h(8))}</div>
<div class="composer"><div contenteditable="true" role="textbox" data-chrome="fb-comment">Write a comment…</div></div>"""
        more = "".join(article(i, k) for i, k in ((2, h(9)), (3, n(8)))).replace("'", "\\'").replace("\n", " ")
        script = f"setTimeout(() => document.getElementById('feed').insertAdjacentHTML('beforeend', '{more}'), 500);"
        return self.page("facebook", body, script)

    def ninegag(self, seed):
        """9GAG: <picture> with a WebP <source>, and "GIF" posts as <video> with <source> children."""
        h, n = self.cases.harmful, self.cases.neutral
        src = lambda k, name: self.pic(k, seed, name)  # noqa: E731
        body = f"""<header class="top"><a href="#" data-chrome="9gag-logo">9GAG</a><button data-chrome="9gag-menu">Menu</button></header>
<main>
  <article class="post"><picture><source srcset="{src(h(10), "9gag-0")}&amp;fmt=webp" type="image/webp">
    {self.img(h(10), seed, "9gag-0", extra='width="480" height="360"')}</picture></article>
  <article class="post"><picture><source srcset="{src(n(9), "9gag-1")}&amp;fmt=webp" type="image/webp">
    {self.img(n(9), seed, "9gag-1", extra='width="480" height="360"')}</picture></article>
  <article class="post"><div class="pic"><video class="fill" data-truth="harmful" data-post="9gag-video" data-picture="9gag-video"
    data-kind="video" autoplay muted loop playsinline poster="{src(n(10), "9gag-video-poster")}">
    <source src="/v/flag-frames.webm?s={html.escape(seed)}" type="video/webm"></video></div></article>
</main>"""
        return self.page("9gag", body)

    def tumblr(self, seed):
        """Tumblr: responsive <img srcset sizes> in <figure>s."""
        h, n = self.cases.harmful, self.cases.neutral

        def figure(i, k):
            u = self.pic(k, seed, f"tumblr-{i}")
            responsive = (f'srcset="{u}&amp;w=400 400w, {u}&amp;w=640 640w" sizes="(max-width: 540px) 100vw, 480px" '
                          'width="480" height="360"')
            return (f'<article class="post"><figure>{self.img(k, seed, f"tumblr-{i}", extra=responsive)}</figure>'
                    f'<button data-chrome="tumblr-reblog-{i}">Reblog</button></article>')
        body = f"""<header class="top"><a href="#" data-chrome="tumblr-logo">tumblr</a></header>
<main>{figure(0, h(11))}{figure(1, n(11))}{figure(2, h(12))}</main>"""
        return self.page("tumblr", body)

    def mastodon(self, seed):
        """Mastodon: columns that scroll by themselves; a sensitive picture behind the site's own spoiler."""
        h, n = self.cases.harmful, self.cases.neutral

        def status(i, k, sensitive=False):
            name = f"masto-{i}"
            if sensitive:
                gallery = (f'<div class="media-gallery pic" id="gallery-{i}"><button class="spoiler-button" data-chrome="masto-spoiler-{i}" '
                           f'onclick="this.remove(); document.getElementById(\'hidden-{i}\').hidden = false">Sensitive content: show</button>'
                           f'<div id="hidden-{i}" hidden>{self.img(k, seed, name, cls="fill")}</div></div>')
            else:
                gallery = f'<div class="media-gallery pic"><a class="media-gallery__item-thumbnail" href="#">{self.img(k, seed, name, cls="fill")}</a></div>'
            return f'<article class="status post" style="width: 500px">{gallery}</article>'
        column = lambda title, statuses: (  # noqa: E731
            f'<div class="column" style="height: 700px; overflow-y: auto; width: 540px"><h2 data-chrome="masto-{title}">{title}</h2>{statuses}</div>')
        body = f"""<div class="columns-area" style="display: flex; gap: 8px">
  {column("home", status(0, h(13)) + status(1, n(12)) + status(2, h(14), sensitive=True))}
  {column("local", status(3, n(13)) + status(4, h(15)))}
</div><div class="composer"><textarea data-chrome="masto-compose" placeholder="What's on your mind?"></textarea></div>"""
        return self.page("mastodon", body)

    def discord(self, seed):
        """Discord: a message list that scrolls by itself above a fixed chat box; GIFs as videos."""
        h, n = self.cases.harmful, self.cases.neutral
        msgs = "".join(f'<li><div>user{i}</div><div class="imageWrapper pic" style="width: 400px; height: 300px">'
                       f'{self.img(k, seed, f"discord-{i}", cls="fill lazyImg")}</div></li>'
                       for i, k in enumerate([n(14), h(16), n(15), h(17)]))
        body = f"""<nav class="top"><button data-chrome="discord-server">Server</button></nav>
<ol data-list-id="chat-messages" style="height: 900px; overflow-y: auto; list-style: none">{msgs}
  <li><div class="pic" style="width: 400px; height: 300px">{self.video(None, seed, "discord-gif", "no-poster")}</div></li></ol>
<div class="composer"><div role="textbox" contenteditable="true" data-chrome="discord-chat">Message #general</div></div>"""
        return self.page("discord", body)

    def telegram(self, seed):
        """Telegram Web: photos decoded by the app and shown from blob: URLs."""
        h, n = self.cases.harmful, self.cases.neutral
        bubbles = "".join(f'<div class="bubble"><div class="media-photo pic" style="width: 400px; height: 300px">'
                          f'<img class="fill" data-truth="{self.cases.site.memes[k][1]}" data-post="tg-{i}" data-picture="tg-{i}" '
                          f'data-kind="blob" data-src="{self.pic(k, seed, f"tg-{i}").replace("&amp;", "&")}" alt=""></div></div>'
                          for i, k in enumerate([h(18), n(16), h(19)]))
        body = f"""<div class="top"><input data-chrome="tg-search" placeholder="Search"></div>
<div class="bubbles" style="height: 1000px; overflow-y: auto">{bubbles}</div>
<div class="composer"><div contenteditable="true" data-chrome="tg-message">Message</div></div>"""
        script = """
for (const img of document.querySelectorAll('img[data-src]')) {
  fetch(img.dataset.src).then((r) => r.blob()).then((b) => { img.src = URL.createObjectURL(b); });
}"""
        return self.page("telegram", body, script)

    def imgur(self, seed):
        """Imgur and iFunny: an <img> post, a "gifv" <video> with a poster, and a background-image meme."""
        h, n = self.cases.harmful, self.cases.neutral
        body = f"""<header class="top"><a href="#" data-chrome="imgur-logo">imgur</a><button data-chrome="imgur-upload">New post</button></header>
<main>
  <div class="post"><div class="image-placeholder pic">{self.img(h(20), seed, "imgur-0", cls="fill")}</div></div>
  <div class="post"><div class="pic">{self.video(n(17), seed, "imgur-gifv", "clean")}</div></div>
  <div class="post"><div class="media pic">{self.bg(h(21), seed, "ifunny-0")}</div></div>
  <div class="post"><div class="media pic">{self.bg(n(18), seed, "ifunny-1")}</div></div>
</main>"""
        return self.page("imgur", body)

    def render(self, name, seed):
        builder = {"x": self.x, "reddit": self.reddit, "old-reddit": self.old_reddit, "instagram": self.instagram,
                   "facebook": self.facebook, "9gag": self.ninegag, "tumblr": self.tumblr, "mastodon": self.mastodon,
                   "discord": self.discord, "telegram": self.telegram, "imgur": self.imgur}.get(name)
        return builder(seed) if builder else None
