"""The currencies the engine knows: ISO 4217 codes and the decimal places of their minor
units, as money is written in them (CLDR's digits, which for a few codes such as HUF, IDR and
COP are fewer than ISO's table: those minor units are not used in practice).

The table is the engine's own, frozen here: a currency's digits decide which amounts are
valid and how every stored amount of a program in that currency is printed, so they never
change with a library upgrade. It holds current and historic codes alike.
"""

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

__all__ = ["MINOR_UNITS"]

_CODES_BY_DIGITS: Final = {
    0: """
        ADP AFN ALL BIF BYR CLP COP DJF ESP GNF HUF IDR IQD IRR ISK ITL JPY KMF KPW KRW LAK LBP
        LUF MGA MGF MMK MRO PYG RWF SLL SOS STD SYP TMM TRL UGX UYI VND VUV XAF XOF XPF YER ZMK
        ZWD
        """,
    2: """
        AED AFA ALK AMD ANG AOA AOK AON AOR ARA ARL ARM ARP ARS ATS AUD AWG AZM AZN BAD BAM BAN
        BBD BDT BEC BEF BEL BGL BGM BGN BGO BMD BND BOB BOL BOP BOV BRB BRC BRE BRL BRN BRR BRZ
        BSD BTN BUK BWP BYB BYN BZD CAD CDF CHE CHF CHW CLE CNH CNY COU CRC CSD CSK CUC CUP CVE
        CYP CZK DDM DEM DKK DOP DZD ECS ECV EEK EGP ERN ESA ESB ETB EUR FIM FJD FKP FRF GBP GEK
        GEL GHC GHS GIP GMD GNS GQE GRD GTQ GWE GWP GYD HKD HNL HRD HRK HTG IEP ILP ILR ILS INR
        ISJ JMD KES KGS KHR KRH KRO KYD KZT LKR LRD LSL LTL LTT LUC LUL LVL LVR MAD MAF MCF MDC
        MDL MKD MKN MLF MNT MOP MRU MTL MTP MUR MVP MVR MWK MXN MXP MXV MYR MZE MZM MZN NAD NGN
        NIC NIO NLG NOK NPR NZD PAB PEI PEN PES PGK PHP PKR PLN PLZ PTE QAR RHD ROL RON RSD RUB
        RUR SAR SBD SCR SDD SDG SDP SEK SGD SHP SIT SKK SLE SRD SRG SSP STN SUR SVC SZL THB TJR
        TJS TMT TOP TPE TRY TTD TWD TZS UAH UAK UGS USD USN USS UYP UYU UZS VEB VED VEF VES VNN
        WST XAD XAG XAU XBA XBB XBC XBD XCD XCG XDR XEU XFO XFU XPD XPT XRE XSU XTS XUA XXX YDD
        YUD YUM YUN YUR ZAL ZAR ZMW ZRN ZRZ ZWG ZWL ZWR
        """,
    3: """
        BHD JOD KWD LYD OMR TND
        """,
    4: """
        CLF UYW
        """,
}

MINOR_UNITS: Final[Mapping[str, int]] = MappingProxyType(
    {code: digits for digits, codes in _CODES_BY_DIGITS.items() for code in codes.split()}
)
"""Decimal places of each known currency's minor unit: USD 2, JPY 0, KWD 3, CLF 4."""
