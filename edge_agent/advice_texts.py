"""Texts of the operating advice, by language and rule id.

The single source the Home Assistant translations mirror. Every language has every
rule with the same ``{placeholders}``; tests hold them to that.
"""

from __future__ import annotations

ADVICE_TEXTS: dict[str, dict[str, str]] = {
    "en": {
        "phase_load_imbalance": (
            "Current unbalance is {value} % (limit {limit} %). Move about {amps} A of "
            "single-phase load from phase {from_phase} to phase {to_phase}; balanced, each "
            "phase would carry about {target} A."
        ),
        "voltage_high": (
            "Phase {phase} voltage is {voltage} V, {deviation} % above nominal (limit "
            "+{limit} %) for a sustained period. Move the transformer tap changer to a "
            "lower-voltage position or switch off reactive compensation capacitors."
        ),
        "voltage_low": (
            "Phase {phase} voltage is {voltage} V, {deviation} % below nominal (limit "
            "-{limit} %) for a sustained period. Move the transformer tap changer to a "
            "higher-voltage position or switch in reactive compensation capacitors."
        ),
        "voltage_unbalance_high": (
            "Voltage unbalance is {value} % (limit {limit} %, short-time {short_limit} %). "
            "Check how single-phase loads are spread over the phases and report it to the "
            "utility if it persists."
        ),
        "heavy_load": (
            "Load is {load} kVA, {value} % of the rated {rated} kVA (heavy above {limit} %). "
            "Plan a transfer of load to another transformer or feeder, or a capacity increase."
        ),
        "overload": (
            "Load is {load} kVA, {value} % of the rated {rated} kVA (overload above {limit} %). "
            "Transfer load to another transformer or feeder now, or add capacity."
        ),
        "low_power_factor": (
            "Power factor is {value} (target {target}) at {power} kW. Add a capacitor bank "
            "of about {kvar} kvar."
        ),
        "frequency_deviation": (
            "Frequency is {frequency} Hz, {value} Hz from nominal (limit ±{limit} Hz). "
            "Report the deviation to the dispatch centre."
        ),
    },
    "zh-Hans": {
        "phase_load_imbalance": (
            "三相电流不平衡度为 {value}%（限值 {limit}%）。建议将约 {amps} A 的单相负荷从 "
            "{from_phase} 相调至 {to_phase} 相；平衡后每相约 {target} A。"
        ),
        "voltage_high": (
            "{phase} 相电压 {voltage} V，持续高于标称值 {deviation}%（上限 +{limit}%）。"
            "建议将变压器分接开关调至低电压档位，或切除部分无功补偿电容器。"
        ),
        "voltage_low": (
            "{phase} 相电压 {voltage} V，持续低于标称值 {deviation}%（下限 -{limit}%）。"
            "建议将变压器分接开关调至高电压档位，或投入无功补偿电容器。"
        ),
        "voltage_unbalance_high": (
            "三相电压不平衡度为 {value}%（正常限值 {limit}%，短时限值 {short_limit}%）。"
            "请检查单相负荷在各相的分配，如持续存在请向供电部门反映。"
        ),
        "heavy_load": (
            "当前负荷 {load} kVA，为额定容量 {rated} kVA 的 {value}%（超过 {limit}% 为重载）。"
            "建议安排负荷转移至其他变压器或线路，或增容。"
        ),
        "overload": (
            "当前负荷 {load} kVA，为额定容量 {rated} kVA 的 {value}%（超过 {limit}% 为过载）。"
            "请立即将部分负荷转移至其他变压器或线路，或增加容量。"
        ),
        "low_power_factor": (
            "功率因数为 {value}（考核标准 {target}），有功功率 {power} kW。"
            "建议加装约 {kvar} kvar 的无功补偿电容器。"
        ),
        "frequency_deviation": (
            "频率为 {frequency} Hz，偏离标称值 {value} Hz（限值 ±{limit} Hz）。"
            "请向电力调度部门报告。"
        ),
    },
}
