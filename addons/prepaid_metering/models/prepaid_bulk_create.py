import contextvars
import copy

from odoo import api, models

from ..tools.precompute import fill_related

#: While one create of many records prepares its values: {(model, fields,
#: env): (defaults that are the same at every call, fields to ask for each
#: time)}.
_SHARED_DEFAULTS = contextvars.ContextVar("prepaid_shared_defaults", default=None)
#: From this many records, one create shares its defaults and precomputes
#: related fields from one read of the parents (``bench/import.py
#: --baseline`` sets it out of reach to measure Odoo's own way).
BULK_MINIMUM = 2


class PrepaidBulkCreate(models.AbstractModel):
    """Keep one ``create()`` of thousands of records (the fleet import) close
    to the cost of its INSERT.

    Odoo prepares each new record on its own: ``default_get`` over every
    field of the model (about 0.4 ms a record here), and a new record per
    vals to precompute the related fields (about 1 ms a record). For one
    create of many records, this computes the defaults once per set of given
    fields (a default that differs between two calls, a sequence or a token,
    is still computed for each record) and reads the parents of the related
    fields once; ``_check_company`` checks the linked records of each company
    in one ``filtered_domain`` instead of one per record (and leaves any
    inconsistency to Odoo's own check, for its error).
    """

    _name = "prepaid.bulk.create"
    _description = "Bulk Create"

    def _prepare_create_values(self, vals_list):
        if len(vals_list) < BULK_MINIMUM:
            return super()._prepare_create_values(vals_list)
        token = _SHARED_DEFAULTS.set({})
        try:
            return super()._prepare_create_values(vals_list)
        finally:
            _SHARED_DEFAULTS.reset(token)

    @api.model
    def default_get(self, fields_list):
        shared = _SHARED_DEFAULTS.get()
        if shared is None:
            return super().default_get(fields_list)
        # the environment holds what defaults depend on (user, company,
        # context ``default_*`` keys)
        key = (self._name, tuple(fields_list), self.env)
        known = shared.get(key)
        if known is None:
            first = super().default_get(fields_list)
            second = super().default_get(fields_list)
            varying = [
                name
                for name in first.keys() | second.keys()
                if first.get(name, ()) != second.get(name, ())
            ]
            stable = {k: v for k, v in first.items() if k not in varying}
            shared[key] = (stable, varying)
            return first
        stable, varying = known
        result = {
            k: copy.deepcopy(v) if isinstance(v, list | dict) else v
            for k, v in stable.items()
        }
        if varying:
            result.update(super().default_get(varying))
        return result

    def _add_precomputed_values(self, vals_list):
        filled = fill_related(self, vals_list, BULK_MINIMUM)
        super()._add_precomputed_values(vals_list)
        for vals in vals_list:
            done = filled.get(id(vals))
            if done:
                vals["__precomputed__"] = set(vals.get("__precomputed__", ())) | done

    def _check_company(self, fnames=None):
        if len(self) < BULK_MINIMUM or not self._companies_agree(fnames):
            return super()._check_company(fnames)
        return None

    def _companies_agree(self, fnames=None):
        """Odoo's ``_check_company`` test, grouped by company: True when no
        record links a record of another company (False: let Odoo's check
        find and report them)."""
        if fnames is None or {"company_id", "company_ids"} & set(fnames):
            fnames = self._fields
        names = []
        for name in fnames:
            field = self._fields[name]
            if field.relational and field.check_company:
                if field.company_dependent:
                    return False
                names.append(name)
        if not names:
            return True
        if "company_id" not in self:
            return False
        by_company = {}
        for record in self:
            by_company.setdefault(record.company_id, []).append(record.id)
        for companies, ids in by_company.items():
            records = self.browse(ids).sudo()
            for name in names:
                linked = records[name] if len(records) == 1 else records.mapped(name)
                if not linked:
                    continue
                domain = linked._check_company_domain(companies)
                if (
                    domain
                    and linked.with_context(active_test=False).filtered_domain(domain)
                    != linked
                ):
                    return False
        return True
