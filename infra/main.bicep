metadata description = 'DurableAgents on Azure Functions Premium (custom handler) in a private VNet, with PostgreSQL, Azure Managed Redis, Key Vault and Azure OpenAI behind private endpoints.'

@description('Short application name, used in resource names.')
@minLength(3)
@maxLength(16)
param appName string = 'durableagents'

@description('Azure region for every resource.')
param location string = resourceGroup().location

@description('Zone-redundant high availability for PostgreSQL.')
param postgresHighAvailability bool = false

@description('Days of PostgreSQL point-in-time backups.')
@minValue(7)
@maxValue(35)
param postgresBackupRetentionDays int = 7

@description('PostgreSQL compute SKU.')
param postgresSkuName string = 'Standard_B2s'

@description('PostgreSQL compute tier.')
@allowed([ 'Burstable', 'GeneralPurpose', 'MemoryOptimized' ])
param postgresSkuTier string = 'Burstable'

@description('Always-ready Functions instances (background workers keep running).')
@minValue(1)
param alwaysReadyInstances int = 1

@description('PostgreSQL administrator password. scripts/deploy.sh generates it once per resource group and passes it on every run; it is stored in Key Vault for the app.')
@secure()
param postgresAdminPassword string = newGuid()

@description('Function key for the instance routes (status, raise event, terminate, suspend, resume, purge) that start responses put in their URIs as code=. scripts/deploy.sh generates it once per resource group and sets it on those functions after the zip deploy.')
@secure()
param instanceUriKey string = newGuid()

@description('customHandler: our engine on PostgreSQL (dashboard, gRPC endpoint); isolated: the .NET isolated Durable Functions app with its task hub in the storage account. See README, "Choosing a hosting mode".')
@allowed([ 'customHandler', 'isolated' ])
param hostingMode string = 'customHandler'

var suffix = take(uniqueString(resourceGroup().id, appName), 6)
var prefix = '${appName}-${suffix}'
var compact = toLower(replace('${appName}${suffix}', '-', ''))
var contentShareName = toLower('${appName}-content')
var postgresAdminLogin = 'daadmin'

// Names are computed here, once, so modules get values known before deployment (precise what-if).
var storageAccountName = take('${compact}st', 24)
var keyVaultName = take('${compact}kv', 24)
var openAiName = '${prefix}-oai'

module network 'modules/network.bicep' = {
  name: 'network'
  params: {
    namePrefix: prefix
    location: location
  }
}

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: '${prefix}-id'
  location: location
}

module monitoring 'modules/monitoring.bicep' = {
  name: 'monitoring'
  params: {
    namePrefix: prefix
    location: location
  }
}

module storage 'modules/storage.bicep' = {
  name: 'storage'
  params: {
    name: storageAccountName
    location: location
    privateEndpointSubnetId: network.outputs.privateEndpointSubnetId
    dnsZoneIds: network.outputs.dnsZoneIds
    contentShareName: contentShareName
  }
}

module postgres 'modules/postgres.bicep' = {
  name: 'postgres'
  params: {
    name: '${prefix}-pg'
    location: location
    subnetId: network.outputs.postgresSubnetId
    dnsZoneId: network.outputs.dnsZoneIds.postgres
    administratorLogin: postgresAdminLogin
    administratorPassword: postgresAdminPassword
    skuName: postgresSkuName
    skuTier: postgresSkuTier
    highAvailability: postgresHighAvailability
    backupRetentionDays: postgresBackupRetentionDays
  }
}

module keyVault 'modules/keyvault.bicep' = {
  name: 'keyvault'
  params: {
    name: keyVaultName
    location: location
    privateEndpointSubnetId: network.outputs.privateEndpointSubnetId
    dnsZoneId: network.outputs.dnsZoneIds.vault
    storageAccountName: storageAccountName
    instanceUriKey: instanceUriKey
    postgresConnectionString: 'Host=${postgres.outputs.fqdn};Database=${postgres.outputs.databaseName};Username=${postgresAdminLogin};Password=${postgresAdminPassword};SSL Mode=Require'
  }
}

module redis 'modules/redis.bicep' = {
  name: 'redis'
  params: {
    name: '${prefix}-redis'
    location: location
    privateEndpointSubnetId: network.outputs.privateEndpointSubnetId
    dnsZoneId: network.outputs.dnsZoneIds.redis
    appPrincipalId: identity.properties.principalId
  }
}

module openAi 'modules/openai.bicep' = {
  name: 'openai'
  params: {
    name: openAiName
    location: location
    privateEndpointSubnetId: network.outputs.privateEndpointSubnetId
    dnsZoneId: network.outputs.dnsZoneIds.openai
  }
}

module roles 'modules/roles.bicep' = {
  name: 'roles'
  params: {
    principalId: identity.properties.principalId
    identityId: identity.id
    keyVaultName: keyVaultName
    storageAccountName: storageAccountName
    openAiName: openAiName
  }
  dependsOn: [ keyVault, storage, openAi ]
}

module functionApp 'modules/functionApp.bicep' = {
  name: 'functionapp'
  params: {
    name: '${prefix}-func'
    location: location
    subnetId: network.outputs.functionsSubnetId
    identityId: identity.id
    identityClientId: identity.properties.clientId
    storageAccountName: storageAccountName
    contentShareName: contentShareName
    contentShareSecretUri: keyVault.outputs.contentShareSecretUri
    postgresSecretUri: keyVault.outputs.postgresSecretUri
    instanceUriKeySecretUri: keyVault.outputs.instanceUriKeySecretUri
    appInsightsConnectionString: monitoring.outputs.appInsightsConnectionString
    openAiEndpoint: openAi.outputs.endpoint
    alwaysReadyInstances: alwaysReadyInstances
    hostingMode: hostingMode
  }
  dependsOn: [ roles ] // the identity must read Key Vault before the app resolves its references
}

output appUrl string = functionApp.outputs.url
output functionAppName string = functionApp.outputs.name
output hostingMode string = functionApp.outputs.hostingMode
output keyVaultName string = keyVault.outputs.name
output postgresServerName string = postgres.outputs.name
output redisName string = redis.outputs.name
output redisHostName string = redis.outputs.hostName
output openAiName string = openAi.outputs.name
output storageAccountName string = storage.outputs.name
output appInsightsName string = monitoring.outputs.appInsightsName
