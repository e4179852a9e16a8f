"""Speaking to the console as a browser does, without one: cookies, forms, CSRF tokens."""

from __future__ import annotations

import html
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import httpx

from tests.sites import PASSWORD, Site


@dataclass
class Visitor:
    """One browser's cookies, signed in (or not) to the console."""

    client: httpx.AsyncClient
    csrf: str = ""

    async def sign_in(self, name: str, password: str = PASSWORD) -> httpx.Response:
        """Fill and send the sign-in form."""
        form = await self.client.get("/sign-in")
        token = re.search(r'name="csrf" value="([^"]+)"', form.text)
        assert token is not None, form.text
        reply = await self.client.post("/sign-in", data={
            "csrf": token.group(1), "name": name, "password": password, "next": "/"})
        if reply.status_code == 303:
            page = await self.client.get("/")
            found = re.search(r'data-csrf="([^"]+)"', page.text)
            assert found is not None
            self.csrf = found.group(1)
        return reply

    async def post(self, path: str, **fields: str) -> httpx.Response:
        """Send a form with the page's CSRF token (unless ``csrf`` is given)."""
        return await self.client.post(path, data={"csrf": self.csrf, **fields})

    async def said(self, path: str) -> list[str]:
        """What the page at ``path`` tells the person."""
        page = await self.client.get(path)
        return [html.unescape(re.sub(r"\s+", " ", m)) for m in
                re.findall(r'<p class="said [a-z]+" role="[a-z]+">([^<]*)</p>', page.text)]


@asynccontextmanager
async def visitor(site: Site) -> AsyncIterator[Visitor]:
    """A browser with no cookies yet."""
    async with httpx.AsyncClient(base_url=site.url, timeout=30) as client:
        yield Visitor(client)
