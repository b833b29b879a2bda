@description('Function app name.')
param name string

@description('Azure region.')
param location string

@description('Subnet delegated to Microsoft.Web/serverFarms for regional VNet integration.')
param subnetId string

@description('Resource id of the user-assigned identity.')
param identityId string

@description('Client id of the user-assigned identity.')
param identityClientId string

@description('Storage account of the Functions host (identity-based).')
param storageAccountName string

@description('Name of the content share.')
param contentShareName string

@description('Key Vault secret URI of the content share connection string.')
param contentShareSecretUri string

@description('Key Vault secret URI of the PostgreSQL connection string.')
param postgresSecretUri string

@description('Key Vault secret URI of the instance routes\' function key (DurableAgents:Api:InstanceUriKey).')
param instanceUriKeySecretUri string

@description('Application Insights connection string (not a secret; ingestion requires Entra auth).')
param appInsightsConnectionString string

@description('Azure OpenAI endpoint.')
param openAiEndpoint string

@description('Instances kept warm, so background workers keep running. At least 1.')
@minValue(1)
param alwaysReadyInstances int = 1

@description('How the app runs the workflows: customHandler (our engine on PostgreSQL, dashboard, gRPC endpoint) or isolated (the .NET isolated worker on Microsoft\'s Durable extension, Azure Storage task hub).')
@allowed([ 'customHandler', 'isolated' ])
param hostingMode string = 'customHandler'

@description('Most instances the plan scales out to.')
param maximumElasticWorkerCount int = 10

resource plan 'Microsoft.Web/serverfarms@2024-11-01' = {
  name: '${name}-plan'
  location: location
  kind: 'elastic'
  sku: {
    name: 'EP1'
    tier: 'ElasticPremium'
  }
  properties: {
    reserved: true // Linux
    maximumElasticWorkerCount: maximumElasticWorkerCount
  }
}

// Every value below is either plain configuration, an identity-based setting, or a Key Vault
// reference resolved with the app's identity: no secret is stored in app settings.
var commonSettings = {
  FUNCTIONS_EXTENSION_VERSION: '~4'
  AzureWebJobsStorage__accountName: storageAccountName
  AzureWebJobsStorage__credential: 'managedidentity'
  AzureWebJobsStorage__clientId: identityClientId
  WEBSITE_CONTENTAZUREFILECONNECTIONSTRING: '@Microsoft.KeyVault(SecretUri=${contentShareSecretUri})'
  WEBSITE_CONTENTSHARE: contentShareName
  WEBSITE_SKIP_CONTENTSHARE_VALIDATION: '1'
  APPLICATIONINSIGHTS_CONNECTION_STRING: appInsightsConnectionString
  APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'Authorization=AAD;ClientId=${identityClientId}'
  AZURE_CLIENT_ID: identityClientId
  DurableAgents__Store: 'Postgres'
  DurableAgents__Postgres__ConnectionString: '@Microsoft.KeyVault(SecretUri=${postgresSecretUri})'
  DurableAgents__Api__InstanceUriKey: '@Microsoft.KeyVault(SecretUri=${instanceUriKeySecretUri})'
  // DurableAgents__Redis__Configuration is left unset until the app authenticates to Azure Managed
  // Redis with Entra tokens (access keys are disabled). Redis only accelerates wake-ups; without it
  // hosts use PostgreSQL LISTEN/NOTIFY and polling.
  DurableAgents__OpenAI__Endpoint: openAiEndpoint
}

// What differs by hosting mode. In isolated mode the Durable extension keeps its task hub
// (queues, tables, blobs) in the app's storage account through the same identity-based
// AzureWebJobsStorage connection and private endpoints; the activities' ledger and memory stay in PostgreSQL.
var modeSettings = {
  customHandler: {
    FUNCTIONS_WORKER_RUNTIME: 'custom'
  }
  isolated: {
    FUNCTIONS_WORKER_RUNTIME: 'dotnet-isolated'
  }
}

var linuxFxVersions = {
  customHandler: ''
  isolated: 'DOTNET-ISOLATED|10.0'
}

var appSettings = union(commonSettings, modeSettings[hostingMode])

resource app 'Microsoft.Web/sites@2024-11-01' = {
  name: name
  location: location
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: { '${identityId}': {} }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    virtualNetworkSubnetId: subnetId
    keyVaultReferenceIdentity: identityId
    outboundVnetRouting: {
      allTraffic: true
      applicationTraffic: true
      contentShareTraffic: true
    }
    siteConfig: {
      linuxFxVersion: linuxFxVersions[hostingMode]
      minTlsVersion: '1.2'
      scmMinTlsVersion: '1.2'
      ftpsState: 'Disabled'
      http20Enabled: true
      minimumElasticInstanceCount: alwaysReadyInstances
      appSettings: [for setting in items(appSettings): {
        name: setting.key
        value: setting.value
      }]
    }
  }
}

resource basicPublishingFtp 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-11-01' = {
  parent: app
  name: 'ftp'
  properties: { allow: false }
}

output url string = 'https://${app.properties.defaultHostName}'
output name string = app.name
output hostingMode string = hostingMode
