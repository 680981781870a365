"""``/dashboard/processor``: the merchant's processor, its declared settings and their values,
and its fallback processors (tried in order when one before is unavailable before any money
moved).

Non-secret values are shown and editable; secret inputs are write-only (never rendered, an
empty input keeps the stored value). A value that is missing, or settings that do not decrypt,
are shown so the merchant knows why payments are refused.
"""

from __future__ import annotations

from paygate.errors import PaygateError
from paygate.services import merchants, processor_configs

from .base import Page

FIELD_PREFIX = "setting_"
UNSET_PREFIX = "unset_"


class Processor(Page):
    def show(
        self,
        req,
        resp,
        *,
        status: int = 200,
        error=None,
        typed=None,
        fallback_error=None,
        fallback_typed=None,
    ) -> None:
        merchant = self.merchant(req)
        processor = self.ctx.plugins.processors.get(merchant.processor)
        described = (
            processor_configs.describe(self.ctx, merchant.id, merchant.processor)
            if processor is not None
            else None
        )
        self.render(
            req,
            resp,
            "processor.html",
            status=status,
            active="processor",
            error=error or (described.error if described else None),
            name=merchant.processor,
            processor=processor,
            methods=sorted(processor.methods) if processor is not None else [],
            described=described,
            typed=typed or {},
            field_prefix=FIELD_PREFIX,
            unset_prefix=UNSET_PREFIX,
            cache_seconds=processor_configs.CACHE_SECONDS,
            fallback=merchant.fallback_processors,
            fallback_value=(
                fallback_typed
                if fallback_typed is not None
                else ", ".join(merchant.fallback_processors)
            ),
            fallback_error=fallback_error,
            others=sorted(n for n in self.ctx.plugins.processors if n != merchant.processor),
        )

    def on_get(self, req, resp):
        self.show(req, resp)

    def on_post(self, req, resp):
        merchant = self.merchant(req)
        form = self.form(req)
        if form.get("action") == "fallback":
            self.save_fallback(req, resp, merchant, form.get("fallback", ""))
            return
        declared = {s.name: s for s in processor_configs.declared(self.ctx, merchant.processor)}
        values: dict[str, str] = {}
        unset: list[str] = []
        for name, setting in declared.items():
            value = form.get(FIELD_PREFIX + name, "").strip()
            if form.get(UNSET_PREFIX + name) and not setting.required:
                unset.append(name)
            elif setting.secret:
                if value:  # write-only: empty keeps what is stored
                    values[name] = value
            else:
                values[name] = value  # empty: not set
        try:
            processor_configs.set_values(
                self.ctx,
                merchant.id,
                merchant.processor,
                values,
                actor=f"dashboard:{merchant.email}",
                unset=unset,
            )
        except PaygateError as exc:
            typed = {k: v for k, v in values.items() if not declared[k].secret}
            self.show(req, resp, status=400, error=exc.description, typed=typed)
            return
        self.redirect(req, resp, "/dashboard/processor", "Processor settings saved.")

    def save_fallback(self, req, resp, merchant, text: str) -> None:
        """Set the merchant's fallback list (comma-separated names; empty clears it)."""
        try:
            merchants.set_processor(
                self.ctx, merchant.id, merchant.processor, merchants.parse_fallback(text)
            )
        except PaygateError as exc:
            self.show(req, resp, status=400, fallback_error=exc.description, fallback_typed=text)
            return
        self.redirect(req, resp, "/dashboard/processor", "Fallback processors saved.")
