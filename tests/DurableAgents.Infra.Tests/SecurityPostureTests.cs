using System.Text.Json;
using System.Text.RegularExpressions;
using NUnit.Framework;

namespace DurableAgents.Infra.Tests;

/// <summary>
/// The compiled ARM template (main.bicep and every module in it) keeps the data plane private,
/// keeps secrets out of app settings, and gives the app's identity exactly the roles it needs.
/// </summary>
public sealed partial class SecurityPostureTests
{
    private static readonly string[] ExpectedRoles =
    [
        "4633458b-17de-408a-b874-0445c86b69e6", // Key Vault Secrets User
        "b7e6dc6d-f1e8-4753-8033-0f276bb0955b", // Storage Blob Data Owner
        "974c5e8b-45b9-4653-ba55-5f855dd0fb88", // Storage Queue Data Contributor
        "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3", // Storage Table Data Contributor
        "5e0bd9bd-7b93-4f28-af87-19fc36ad61bd", // Cognitive Services OpenAI User
    ];

    private List<(JsonElement Resource, JsonElement Template)> _resources = null!;

    [OneTimeSetUp]
    public async Task CompileMain()
    {
        var (code, stdout, stderr) = await Bicep.RunAsync("build", Path.Combine(Bicep.InfraDir, "main.bicep"), "--stdout");
        Assert.That(code, Is.Zero, stderr);
        var root = JsonDocument.Parse(stdout).RootElement.Clone();
        _resources = [];
        Walk(root, _resources);
        Assert.That(_resources, Is.Not.Empty);
    }

    private static void Walk(JsonElement template, List<(JsonElement, JsonElement)> into)
    {
        if (!template.TryGetProperty("resources", out var resources))
        {
            return;
        }

        var items = resources.ValueKind == JsonValueKind.Array ? resources.EnumerateArray().ToList() : resources.EnumerateObject().Select(p => p.Value).ToList();
        foreach (var r in items)
        {
            into.Add((r, template));
            if (Type(r) == "Microsoft.Resources/deployments" && r.GetProperty("properties").TryGetProperty("template", out var nested))
            {
                Walk(nested, into);
            }
        }
    }

    private static string Type(JsonElement r) => r.GetProperty("type").GetString()!;

    private IEnumerable<JsonElement> OfType(string type) => _resources.Where(x => Type(x.Resource) == type).Select(x => x.Resource);

    private static string Text(JsonElement e, params string[] path)
    {
        foreach (var p in path)
        {
            e = e.GetProperty(p);
        }

        return e.ValueKind == JsonValueKind.String ? e.GetString()! : e.GetRawText();
    }

    [TestCase("Microsoft.Storage/storageAccounts", "properties", "publicNetworkAccess")]
    [TestCase("Microsoft.KeyVault/vaults", "properties", "publicNetworkAccess")]
    [TestCase("Microsoft.CognitiveServices/accounts", "properties", "publicNetworkAccess")]
    [TestCase("Microsoft.Cache/redisEnterprise", "properties", "publicNetworkAccess")]
    [TestCase("Microsoft.DBforPostgreSQL/flexibleServers", "properties", "network", "publicNetworkAccess")]
    public void DataServices_HavePublicNetworkAccessDisabled(string type, params string[] path)
    {
        var resources = OfType(type).ToList();

        Assert.That(resources, Is.Not.Empty, $"no {type} in the template");
        Assert.That(resources.Select(r => Text(r, path)), Has.All.EqualTo("Disabled"));
    }

    [Test]
    public void DataServices_EachHaveAPrivateEndpointOrDelegatedSubnet()
    {
        var groupIds = OfType("Microsoft.Network/privateEndpoints")
            .SelectMany(e => e.GetProperty("properties").GetProperty("privateLinkServiceConnections").EnumerateArray())
            .SelectMany(c => c.GetProperty("properties").GetProperty("groupIds").EnumerateArray())
            .Select(g => g.GetString()!)
            .ToList();
        var templatesGroupIds = _resources.Where(x => Type(x.Resource) == "Microsoft.Resources/deployments")
            .Select(x => x.Resource.GetProperty("properties"))
            .Where(p => p.TryGetProperty("parameters", out var ps) && ps.TryGetProperty("groupId", out _))
            .Select(p => Text(p, "parameters", "groupId", "value"))
            .ToList();
        var all = groupIds.Concat(templatesGroupIds).ToList();

        Assert.That(all, Is.SupersetOf(new[] { "vault", "redisEnterprise", "account" }));
        Assert.That(all.Any(g => g.Contains("blob", StringComparison.Ordinal)), Is.True, "storage blob, queue, table and file endpoints");
        Assert.That(Text(OfType("Microsoft.DBforPostgreSQL/flexibleServers").Single(), "properties", "network", "delegatedSubnetResourceId"), Does.Contain("subnetId"));
    }

    [Test]
    public void KeyVault_UsesRbac_AndOpenAiAndRedis_DisableKeys()
    {
        Assert.That(Text(OfType("Microsoft.KeyVault/vaults").Single(), "properties", "enableRbacAuthorization"), Is.EqualTo("true"));
        Assert.That(Text(OfType("Microsoft.CognitiveServices/accounts").Single(), "properties", "disableLocalAuth"), Is.EqualTo("true"));
        Assert.That(Text(OfType("Microsoft.Cache/redisEnterprise/databases").Single(), "properties", "accessKeysAuthentication"), Is.EqualTo("Disabled"));
    }

    [Test]
    public void FunctionApp_IsHttpsOnlyCustomHandlerInTheVnet_WithFtpsOffAndTls12()
    {
        var app = OfType("Microsoft.Web/sites").Single();
        var p = app.GetProperty("properties");
        var site = p.GetProperty("siteConfig");

        Assert.That(Text(p, "httpsOnly"), Is.EqualTo("true"));
        Assert.That(Text(p, "virtualNetworkSubnetId"), Does.Contain("subnetId"));
        Assert.That(Text(p, "outboundVnetRouting", "applicationTraffic"), Is.EqualTo("true"));
        Assert.That(Text(p, "outboundVnetRouting", "contentShareTraffic"), Is.EqualTo("true"));
        // The runtime follows the hosting mode: a custom handler has no stack; the isolated app runs on .NET 10 isolated.
        var template = _resources.Single(x => Type(x.Resource) == "Microsoft.Web/sites").Template;
        Assert.That(Text(site, "linuxFxVersion"), Is.EqualTo("[variables('linuxFxVersions')[parameters('hostingMode')]]"));
        var stacks = template.GetProperty("variables").GetProperty("linuxFxVersions");
        Assert.That(Text(stacks, "customHandler"), Is.Empty);
        Assert.That(Text(stacks, "isolated"), Is.EqualTo("DOTNET-ISOLATED|10.0"));
        Assert.That(template.GetProperty("parameters").GetProperty("hostingMode").GetProperty("allowedValues").EnumerateArray().Select(v => v.GetString()), Is.EquivalentTo(new[] { "customHandler", "isolated" }));
        Assert.That(Text(site, "ftpsState"), Is.EqualTo("Disabled"));
        Assert.That(Text(site, "minTlsVersion"), Is.EqualTo("1.2"));
        Assert.That(Text(site, "minimumElasticInstanceCount"), Does.Contain("alwaysReadyInstances"));
        Assert.That(Text(app, "identity", "type"), Is.EqualTo("UserAssigned"));
        var plan = OfType("Microsoft.Web/serverfarms").Single();
        Assert.That(Text(plan, "sku", "name"), Is.EqualTo("EP1"));
        Assert.That(Text(plan, "properties", "reserved"), Is.EqualTo("true"));
    }

    [Test]
    public void AppSettings_HoldNoSecrets_OnlyKeyVaultReferencesAndIdentityBasedSettings()
    {
        var template = _resources.Single(x => Type(x.Resource) == "Microsoft.Web/sites").Template;
        var variables = template.GetProperty("variables");
        Assert.That(Text(variables, "appSettings"), Is.EqualTo("[union(variables('commonSettings'), variables('modeSettings')[parameters('hostingMode')])]"));
        var modes = variables.GetProperty("modeSettings").EnumerateObject().ToDictionary(m => m.Name, m => m.Value.EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetString()!));
        Assert.That(modes.Keys, Is.EquivalentTo(new[] { "customHandler", "isolated" }));
        Assert.That(modes["customHandler"]["FUNCTIONS_WORKER_RUNTIME"], Is.EqualTo("custom"));
        Assert.That(modes["isolated"]["FUNCTIONS_WORKER_RUNTIME"], Is.EqualTo("dotnet-isolated"));

        // Both modes: the common settings plus their own, none of which may hold a secret.
        foreach (var (mode, own) in modes)
        {
            var settings = variables.GetProperty("commonSettings").EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetString()!);
            foreach (var (k, v) in own)
            {
                settings[k] = v;
            }

            AssertNoSecrets(settings, mode);
        }

        // The App Insights connection string is not a secret (Microsoft's guidance); local auth is
        // off, so ingestion needs the app's Entra identity.
        Assert.That(Text(OfType("Microsoft.Insights/components").Single(), "properties", "DisableLocalAuth"), Is.EqualTo("true"));
    }

    private static void AssertNoSecrets(Dictionary<string, string> settings, string mode)
    {
        // In isolated mode the Durable extension's task hub uses this same identity-based connection.
        Assert.That(settings["AzureWebJobsStorage__credential"], Is.EqualTo("managedidentity"), mode);
        Assert.That(settings.Keys, Does.Not.Contain("AzureWebJobsStorage"), "no key-based storage connection string");
        foreach (var (name, value) in settings)
        {
            Assert.That(value, Does.Not.Contain("listKeys").And.Not.Contain("AccountKey=").And.Not.Contain("Password=").IgnoreCase, $"{mode}: {name}");
            if (SecretLikeName().IsMatch(name) && name != "APPLICATIONINSIGHTS_CONNECTION_STRING")
            {
                Assert.That(value, Does.Contain("@Microsoft.KeyVault(SecretUri="), $"{mode}: {name} must be a Key Vault reference");
            }
        }

        Assert.That(settings["APPLICATIONINSIGHTS_AUTHENTICATION_STRING"], Does.Contain("Authorization=AAD;ClientId="), mode);
    }

    [Test]
    public void AppIdentity_HasExactlyTheListedRoles()
    {
        var assignments = _resources.Where(x => Type(x.Resource) == "Microsoft.Authorization/roleAssignments").ToList();
        Assert.That(assignments, Is.Not.Empty);
        var templates = assignments.Select(a => a.Template).Distinct().ToList();
        Assert.That(templates, Has.Count.EqualTo(1), "role assignments live in one place (modules/roles.bicep)");

        var roles = templates[0].GetProperty("variables").GetProperty("roles").EnumerateObject().Select(p => p.Value.GetString()!).ToList();
        Assert.That(roles, Is.EquivalentTo(ExpectedRoles));

        var total = 0;
        foreach (var (a, _) in assignments)
        {
            var p = a.GetProperty("properties");
            Assert.That(Text(p, "principalId"), Is.EqualTo("[parameters('principalId')]"));
            Assert.That(Text(p, "principalType"), Is.EqualTo("ServicePrincipal"));
            var definition = Text(p, "roleDefinitionId");
            Assert.That(definition, Does.Contain("variables('roles')"), "role ids come from the reviewed list only");
            Assert.That(GuidPattern().IsMatch(definition), Is.False, "no role GUID outside the list");
            total += a.TryGetProperty("copy", out var copy) ? CountOf(copy) : 1;
        }

        Assert.That(total, Is.EqualTo(ExpectedRoles.Length), "one assignment per listed role");
    }

    private static int CountOf(JsonElement copy)
    {
        var count = Text(copy, "count");
        var match = CreateArrayArgs().Match(count);
        Assert.That(match.Success, Is.True, $"unexpected copy count {count}");
        return match.Groups[1].Value.Split(',').Length;
    }

    [GeneratedRegex("password|secret|connectionstring|key", RegexOptions.IgnoreCase)]
    private static partial Regex SecretLikeName();

    [GeneratedRegex("[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")]
    private static partial Regex GuidPattern();

    [GeneratedRegex(@"length\(createArray\((.*)\)\)")]
    private static partial Regex CreateArrayArgs();
}
