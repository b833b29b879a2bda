@description('Key Vault name.')
param name string

@description('Azure region.')
param location string

@description('Subnet for private endpoints.')
param privateEndpointSubnetId string

@description('Private DNS zone id for vaultcore.')
param dnsZoneId string

@description('Storage account whose key backs the Functions content share (kept here, not in app settings).')
param storageAccountName string

@description('PostgreSQL connection string for the app.')
@secure()
param postgresConnectionString string

@description('Function key for the instance routes, put in start responses\' URIs (code=); never the master key.')
@secure()
param instanceUriKey string

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  name: name
  location: location
  properties: {
    tenantId: subscription().tenantId
    sku: { family: 'A', name: 'standard' }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: 30
    enablePurgeProtection: true
    publicNetworkAccess: 'Disabled'
    networkAcls: {
      defaultAction: 'Deny'
      bypass: 'None'
    }
  }
}

resource contentShareSecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = {
  parent: vault
  name: 'content-share-connection-string'
  properties: {
    value: 'DefaultEndpointsProtocol=https;AccountName=${storage.name};AccountKey=${storage.listKeys().keys[0].value};EndpointSuffix=${environment().suffixes.storage}'
  }
}

resource postgresSecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = {
  parent: vault
  name: 'postgres-connection-string'
  properties: { value: postgresConnectionString }
}

resource instanceUriKeySecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = {
  parent: vault
  name: 'instance-uri-key'
  properties: { value: instanceUriKey }
}

module endpoint 'privateEndpoint.bicep' = {
  name: '${name}-pe-vault'
  params: {
    name: '${name}-pe-vault'
    location: location
    subnetId: privateEndpointSubnetId
    targetId: vault.id
    groupId: 'vault'
    dnsZoneId: dnsZoneId
  }
}

output id string = vault.id
output name string = vault.name
output contentShareSecretUri string = contentShareSecret.properties.secretUri
output postgresSecretUri string = postgresSecret.properties.secretUri
output instanceUriKeySecretUri string = instanceUriKeySecret.properties.secretUri
