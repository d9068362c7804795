namespace FenceCore.Stress.Tests;

/// <summary><see cref="SeededRandom"/> draws exactly what <c>new System.Random(seed)</c> draws: a run's digest depends
/// on every draw of its workload.</summary>
public sealed class SeededRandomTests
{
    public static TheoryData<int> Seeds => [0, 1, 7, 42, -5, 123456789, int.MaxValue, int.MinValue, int.MinValue + 1];

    /// <summary>Every method the workload calls, with the arguments it uses and more, in one mixed sequence, so a
    /// method that drew a different number of times would shift everything after it.</summary>
    [Theory]
    [MemberData(nameof(Seeds))]
    public void EveryDraw_IsTheSystemRandomsOfTheSameSeed(int seed)
    {
        var expected = new Random(seed);
        var actual = new SeededRandom(seed);
        var pick = new Random(seed ^ 0x5bd1e995); // which method to call next; independent of both
        long[] ranges64 = [1, 2, 3, 200, 1000, 1L << 31, (1L << 40) + 7, long.MaxValue];
        int[] ranges = [1, 2, 3, 5, 24, 96, 1 << 22, int.MaxValue];
        for (int i = 0; i < 20_000; i++)
        {
            switch (pick.Next(4))
            {
                case 0:
                    Assert.Equal(expected.NextDouble(), actual.NextDouble());
                    break;
                case 1:
                    int max = ranges[pick.Next(ranges.Length)];
                    Assert.Equal(expected.Next(max), actual.Next(max));
                    break;
                case 2:
                    int min = pick.Next(-100, 100);
                    int width = ranges[pick.Next(ranges.Length)];
                    int upper = (int)Math.Min(int.MaxValue, (long)min + width);
                    Assert.Equal(expected.Next(min, upper), actual.Next(min, upper));
                    Assert.Equal(expected.Next(int.MinValue, int.MaxValue), actual.Next(int.MinValue, int.MaxValue)); // a range wider than an int
                    break;
                default:
                    long from = pick.Next(0, 1000);
                    long range = ranges64[pick.Next(ranges64.Length)];
                    long to = range > long.MaxValue - from ? long.MaxValue : from + range;
                    Assert.Equal(expected.NextInt64(from, to), actual.NextInt64(from, to));
                    break;
            }
        }
    }
}
