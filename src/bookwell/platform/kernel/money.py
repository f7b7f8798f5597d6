"""Money: integer minor units and an ISO 4217 currency code."""

from __future__ import annotations

from dataclasses import dataclass

# Active ISO 4217 codes (list one, 2025), funds and precious metals excluded.
ISO_4217 = frozenset(
    """
    AED AFN ALL AMD AOA ARS AUD AWG AZN BAM BBD BDT BHD BIF BMD BND BOB BRL BSD BTN BWP BYN BZD
    CAD CDF CHF CLP CNY COP CRC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP GEL GHS
    GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY KES KGS KHR KMF KPW
    KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MYR
    MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR RON RSD RUB RWF SAR SBD SCR
    SDG SEK SGD SHP SLE SOS SRD SSP STN SVC SYP SZL THB TJS TMT TND TOP TRY TTD TWD TZS UAH UGX
    USD UYU UZS VED VES VND VUV WST XAF XCD XCG XOF XPF YER ZAR ZMW ZWG
    """.split()  # noqa: SIM905 - a table reads better than 180 quoted strings
)


@dataclass(frozen=True)
class Money:
    """An amount in minor units (cents); never a float."""

    amount: int
    currency: str

    @property
    def is_zero(self) -> bool:
        """Whether this is nothing to pay."""
        return self.amount == 0

    def as_dict(self) -> dict[str, int | str]:
        """The public JSON shape."""
        return {"amount": self.amount, "currency": self.currency}
