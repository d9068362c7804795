namespace FenceCore.Benchmarks.Gate;

/// <summary>
/// The one-sided Wilcoxon signed-rank test the gate decides with: the paired counterpart of the
/// Mann–Whitney U test that BenchmarkDotNet's <c>--statisticalTest</c> and dotnet/performance's
/// ResultsComparer use. The gate's samples come in pairs measured back to back (see
/// <see cref="AbHarness"/>), and a paired test removes what the machine did to both.
/// </summary>
/// <remarks>
/// In the threshold form: "slower by more than t" is tested as "the paired log ratios exceed
/// log(1 + t)". Zero differences are dropped; tied magnitudes share their average rank; the p-value is
/// exact (every sign pattern counted) up to 60 pairs, and the normal approximation with the tie and
/// continuity corrections beyond.
/// </remarks>
internal static class SignedRank
{
    /// <summary>P-value of H1 "the median of <paramref name="differences"/> is above zero".</summary>
    public static double PAboveZero(IReadOnlyList<double> differences)
    {
        double[] nonZero = differences.Where(d => d != 0 && !double.IsNaN(d)).ToArray();
        int n = nonZero.Length;
        if (n == 0)
        {
            return 1.0;
        }

        int[] order = Enumerable.Range(0, n).OrderBy(i => Math.Abs(nonZero[i])).ToArray();
        double wPlus = 0;
        double tieTerm = 0;
        for (int start = 0; start < n;)
        {
            int end = start;
            while (end + 1 < n && Math.Abs(nonZero[order[end + 1]]) == Math.Abs(nonZero[order[start]]))
            {
                end++;
            }

            double averageRank = (start + end + 2) / 2.0;
            int ties = end - start + 1;
            tieTerm += (double)ties * ties * ties - ties;
            for (int k = start; k <= end; k++)
            {
                if (nonZero[order[k]] > 0)
                {
                    wPlus += averageRank;
                }
            }

            start = end + 1;
        }

        if (n <= 60)
        {
            // Exact: under H0 each rank's sign is a fair coin. Doubled ranks are whole numbers even
            // with ties (average ranks are halves), so count sign patterns by their doubled sum.
            int[] weights = new int[n];
            for (int start = 0, k = 0; start < n; k++)
            {
                int end = start;
                while (end + 1 < n && Math.Abs(nonZero[order[end + 1]]) == Math.Abs(nonZero[order[start]]))
                {
                    end++;
                }

                for (int j = start; j <= end; j++)
                {
                    weights[j] = start + end + 2; // twice the average rank
                }

                start = end + 1;
            }

            int total = weights.Sum();
            var ways = new double[total + 1];
            ways[0] = 1;
            int reach = 0;
            foreach (int w in weights)
            {
                for (int v = reach; v >= 0; v--)
                {
                    ways[v + w] += ways[v];
                }

                reach += w;
            }

            int observed = (int)Math.Round(2 * wPlus);
            double atLeast = 0;
            for (int v = observed; v <= total; v++)
            {
                atLeast += ways[v];
            }

            return atLeast / Math.Pow(2, n);
        }

        double mean = n * (n + 1) / 4.0;
        double variance = n * (n + 1) * (2.0 * n + 1) / 24.0 - tieTerm / 48.0;
        if (variance <= 0)
        {
            return wPlus > mean ? 0.0 : 1.0;
        }

        return UpperTail((wPlus - mean - 0.5) / Math.Sqrt(variance));
    }

    /// <summary>P(Z &gt; z) for a standard normal Z.</summary>
    public static double UpperTail(double z) => 0.5 * Erfc(z / Math.Sqrt(2));

    /// <summary>The complementary error function (Numerical Recipes' Chebyshev fit, relative error below 1.2e-7).</summary>
    private static double Erfc(double x)
    {
        double z = Math.Abs(x);
        double t = 1.0 / (1.0 + 0.5 * z);
        double r = t * Math.Exp(-z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 +
            t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 +
            t * (-0.82215223 + t * 0.17087277)))))))));
        return x >= 0 ? r : 2.0 - r;
    }

    public static double Median(IReadOnlyList<double> values)
    {
        if (values.Count == 0)
        {
            return double.NaN;
        }

        double[] sorted = [.. values.Order()];
        int mid = sorted.Length / 2;
        return sorted.Length % 2 == 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
    }
}
