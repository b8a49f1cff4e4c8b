using System.ComponentModel.DataAnnotations;
using System.Globalization;

namespace MeshGateway.Hosting;

/// <summary>
/// A range check for <see cref="int"/> and <see cref="TimeSpan"/> options whose message names the option and the bad
/// value (the stock <see cref="RangeAttribute"/> message omits the value). Used by the source-generated validator.
/// </summary>
[AttributeUsage(AttributeTargets.Property | AttributeTargets.Field, AllowMultiple = false)]
internal sealed class OptionRangeAttribute : ValidationAttribute
{
    public OptionRangeAttribute(string minimum, string maximum)
    {
        Minimum = minimum;
        Maximum = maximum;
    }

    public string Minimum { get; }

    public string Maximum { get; }

    protected override ValidationResult? IsValid(object? value, ValidationContext validationContext)
    {
        bool inRange = value switch
        {
            null => true,
            int i => i >= int.Parse(Minimum, CultureInfo.InvariantCulture) && i <= int.Parse(Maximum, CultureInfo.InvariantCulture),
            TimeSpan t => t >= TimeSpan.Parse(Minimum, CultureInfo.InvariantCulture) && t <= TimeSpan.Parse(Maximum, CultureInfo.InvariantCulture),
            _ => false,
        };
        if (inRange)
        {
            return ValidationResult.Success;
        }

        string name = validationContext.MemberName ?? validationContext.DisplayName;
        string shown = value is IFormattable f ? f.ToString(null, CultureInfo.InvariantCulture) : value?.ToString() ?? "null";
        return new ValidationResult($"{name} is '{shown}' but must be between {Minimum} and {Maximum}.", [name]);
    }
}
