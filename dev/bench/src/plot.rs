//! One SVG per function: duration and cost against Lambda memory size.

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

pub struct CurvePoint {
    pub memory_mb: u64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    /// arm64 estimate band for p95: (low, high), from a speed-ratio uncertainty
    pub p95_arm64_ms: (f64, f64),
    pub cost_per_million_usd: f64,
}

pub struct Curve {
    pub function: String,
    pub points: Vec<CurvePoint>,
    /// the chosen MemorySize, marked on the plot
    pub chosen_mb: Option<u64>,
}

const SIZE: (u32, u32) = (720, 420);
// Lambda's range before 10 GB became common; wider sizes still widen the axis.
const MIN_MB: f64 = 128.0;
const MAX_MB: f64 = 3008.0;
const P50: RGBColor = RGBColor(31, 119, 180);
const P95: RGBColor = RGBColor(214, 39, 40);
const ARM64: RGBColor = RGBColor(44, 160, 44);
const COST: RGBColor = RGBColor(148, 103, 189);
const CHOSEN: RGBColor = RGBColor(90, 90, 90);

/// The SVG document as a String.
pub fn svg(curve: &Curve) -> Result<String, String> {
    validate(curve)?;
    let mut points: Vec<&CurvePoint> = curve.points.iter().collect();
    points.sort_by_key(|p| p.memory_mb);
    let mb = |p: &CurvePoint| p.memory_mb as f64;
    let x_lo = MIN_MB.min(mb(points[0]));
    let x_hi = MAX_MB.max(mb(points[points.len() - 1]));
    let x_axis = || (x_lo..x_hi).log_scale().with_key_points(points.iter().map(|p| mb(p)).collect());
    let y_max = points.iter().map(|p| p.p50_ms.max(p.p95_ms).max(p.p95_arm64_ms.1)).fold(0.0, f64::max);
    let y_max = if y_max > 0.0 { y_max * 1.15 } else { 1.0 };
    let costs: Vec<(f64, f64)> = points.iter().map(|p| (mb(p), p.cost_per_million_usd)).collect();
    let c_max = costs.iter().map(|c| c.1).fold(0.0, f64::max);
    let c_max = if c_max > 0.0 { c_max * 1.15 } else { 1.0 };

    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(format!("{}: duration and cost by memory size", curve.function), ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(56)
            .right_y_label_area_size(64)
            .build_cartesian_2d(x_axis(), 0.0..y_max)
            .map_err(err)?
            .set_secondary_coord(x_axis(), 0.0..c_max);
        chart
            .configure_mesh()
            .x_desc("memory (MB, log scale)")
            .y_desc("duration (ms)")
            .light_line_style(BLACK.mix(0.04))
            .x_label_formatter(&|x| format!("{x:.0}"))
            .y_label_formatter(&|y| format!("{y:.0}"))
            .draw()
            .map_err(err)?;

        // Upper edge left to right, lower edge back, so the polygon encloses the band.
        let outline = points
            .iter()
            .map(|p| (mb(p), p.p95_arm64_ms.1))
            .chain(points.iter().rev().map(|p| (mb(p), p.p95_arm64_ms.0)));
        chart
            .draw_series(std::iter::once(Polygon::new(outline.collect::<Vec<_>>(), ARM64.mix(0.2).filled())))
            .map_err(err)?
            .label("p95 arm64 estimate")
            .legend(|(x, y)| Rectangle::new([(x, y - 5), (x + 16, y + 5)], ARM64.mix(0.3).filled()));
        for (name, colour, value) in
            [("p50", P50, (|p| p.p50_ms) as fn(&CurvePoint) -> f64), ("p95", P95, |p| p.p95_ms)]
        {
            chart
                .draw_series(
                    LineSeries::new(points.iter().map(|p| (mb(p), value(p))), colour.stroke_width(2)).point_size(3),
                )
                .map_err(err)?
                .label(name)
                .legend(move |(x, y)| PathElement::new([(x, y), (x + 16, y)], colour.stroke_width(2)));
        }
        chart
            .configure_secondary_axes()
            .y_desc("USD per 1M invocations")
            .label_style(("sans-serif", 12))
            .y_label_formatter(&|c| format!("{c:.2}"))
            .draw()
            .map_err(err)?;
        chart
            .draw_secondary_series(LineSeries::new(costs, COST.stroke_width(2)).point_size(3))
            .map_err(err)?
            .label("cost")
            .legend(|(x, y)| PathElement::new([(x, y), (x + 16, y)], COST.stroke_width(2)));
        if let Some(chosen) = curve.chosen_mb {
            let x = chosen as f64;
            let dash = DashedLineSeries::new([(x, 0.0), (x, y_max)], 5, 4, CHOSEN.stroke_width(1));
            chart.draw_series(dash).map_err(err)?;
            // Written towards the middle of the axis, away from the edges and the legend's corner.
            let (side, nudge) =
                if x.ln() * 2.0 > x_lo.ln() + x_hi.ln() { (HPos::Right, 0.97) } else { (HPos::Left, 1.03) };
            let font = ("sans-serif", 12).into_font().color(&CHOSEN).pos(Pos::new(side, VPos::Top));
            let label = Text::new(format!("chosen {chosen} MB"), (x * nudge, y_max * 0.97), font);
            chart.draw_series(std::iter::once(label)).map_err(err)?;
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK.mix(0.3))
            .draw()
            .map_err(err)?;
        root.present().map_err(err)?;
    }
    Ok(out)
}

// Rejected up front: plotters would panic or draw nonsense on an empty range, a zero on the log
// axis or a NaN.
fn validate(curve: &Curve) -> Result<(), String> {
    let name = &curve.function;
    if curve.points.is_empty() {
        return Err(format!("{name}: no points to plot"));
    }
    if curve.chosen_mb == Some(0) {
        return Err(format!("{name}: chosen memory size 0 MB"));
    }
    for p in &curve.points {
        let at = p.memory_mb;
        if at == 0 {
            return Err(format!("{name}: memory size 0 MB"));
        }
        let (lo, hi) = p.p95_arm64_ms;
        let values = [p.p50_ms, p.p95_ms, lo, hi, p.cost_per_million_usd];
        if values.iter().any(|v| !v.is_finite() || *v < 0.0) {
            return Err(format!("{name} at {at} MB: a value is negative, NaN or infinite"));
        }
        if lo > hi {
            return Err(format!("{name} at {at} MB: arm64 band low {lo} above high {hi}"));
        }
    }
    Ok(())
}

fn err(e: impl std::fmt::Display) -> String {
    format!("plot: {e}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(memory_mb: u64, p50_ms: f64) -> CurvePoint {
        let p95_ms = p50_ms * 1.5;
        CurvePoint {
            memory_mb,
            p50_ms,
            p95_ms,
            p95_arm64_ms: (p95_ms * 0.8, p95_ms * 1.1),
            cost_per_million_usd: 0.2 + memory_mb as f64 * p50_ms * 1e-6,
        }
    }

    fn curve(points: Vec<CurvePoint>) -> Curve {
        Curve { function: "sign-in".into(), points, chosen_mb: Some(1024) }
    }

    #[test]
    fn three_points_draw_every_series_and_the_chosen_marker() {
        // GIVEN a 3-point curve with an arm64 band, costs and a chosen size
        let c = curve(vec![point(512, 120.0), point(128, 400.0), point(1024, 60.0)]);
        // WHEN it is plotted
        let svg = svg(&c).unwrap();
        // THEN the document names the function, has a line per series, the band and the marker
        assert!(svg.starts_with("<svg") && svg.contains("sign-in"));
        for colour in [P50, P95, COST] {
            let stroke = format!("stroke=\"#{:02X}{:02X}{:02X}\"", colour.0, colour.1, colour.2);
            assert!(svg.lines().any(|l| l.contains("<polyline") && l.contains(&stroke)), "{stroke}");
        }
        assert!(svg.contains("<polygon"));
        assert!(svg.contains("chosen 1024 MB"));
    }

    #[test]
    fn empty_or_zero_memory_curves_are_errors() {
        // GIVEN a curve without points and one with a 0 MB point
        let empty = curve(vec![]);
        let zero = curve(vec![point(0, 10.0), point(256, 5.0)]);
        // WHEN they are plotted
        // THEN each is an Err, not a panic
        assert!(svg(&empty).is_err());
        assert!(svg(&zero).is_err());
    }

    #[test]
    fn nan_values_are_errors() {
        // GIVEN curves with a NaN duration, band edge or cost
        let mut duration = point(256, 10.0);
        duration.p95_ms = f64::NAN;
        let mut band = point(256, 10.0);
        band.p95_arm64_ms = (f64::NAN, 12.0);
        let mut cost = point(256, 10.0);
        cost.cost_per_million_usd = f64::NAN;
        // WHEN they are plotted
        // THEN each is an Err
        for p in [duration, band, cost] {
            assert!(svg(&curve(vec![point(128, 20.0), p])).is_err());
        }
    }
}
